"""The bounce stage: a bounce of our own mail is recorded against it, then dropped.

A hard bounce (5.x.x) marks the address undeliverable, and mailcase mails it no more
until an operator clears it; a soft one is counted. Only a failure that names the
recipient of the outbound mail it came back for counts, and only one that came back
to that mail's signed VERP address can stop mail to an address, so a forged bounce
cannot silence anyone. Mail to a VERP address that is no bounce (a vacation
responder answering our envelope sender) is automatic by definition. A bounce never
opens a case and is never answered.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from mailcase.identity.tokens import is_bounce_token, token_of
from mailcase.pipeline.context import Context, Drop
from mailcase.pipeline.matching import recipient_addresses
from mailcase.reading import bounces, screen
from mailcase.store.db import insert_unless_present
from mailcase.store.models import Bounce, Case, OutboundMail, RecipientStatus


def take_bounces(ctx: Context) -> None:
    """Record and drop a bounce; note the outbound mail a VERP address names."""
    ctx.verp_outbound = _verp_outbound(ctx)
    if ctx.verp_outbound is None and not bounces.looks_like_bounce(
        ctx.parsed, ctx.inbound.mail_from
    ):
        return
    report = bounces.read(ctx.inbound.raw)
    if not report.failures and ctx.verp_outbound is not None and _from_a_daemon(ctx):
        # A delivery report on one of our VERP addresses in a format no reader knows (a
        # vendor's text): the address names the one mail and recipient it is about. Its
        # status is unknown, so it counts as a soft bounce and never stops mail by itself.
        report = bounces.Report((bounces.Failure(
            ctx.verp_outbound.rcpt_to, permanent=False,
            diagnostic="a delivery report in a format mailcase does not read"),), None)
    if not report.failures:
        if ctx.verp_outbound is not None:
            _robot_on_return_path(ctx, ctx.verp_outbound)
        return
    verified = ctx.verp_outbound is not None
    outbound = ctx.verp_outbound or _by_original(ctx, report.original_message_id)
    said = []
    failures = [_trusted(failure, outbound) for failure in report.failures]
    for failure in failures:
        ours = outbound is not None and (
            outbound.rcpt_to in (failure.recipient, failure.original)
            # a VERP address names one mail to one recipient: its only failure is about it
            or (verified and len(failures) == 1)
        )
        ctx.session.add(Bounce(
            inbound_id=ctx.inbound.id, outbound_id=outbound.id if ours and outbound else None,
            recipient=failure.recipient, permanent=failure.permanent, status=failure.status,
            diagnostic=failure.diagnostic, created_at=ctx.now,
        ))
        if ours and outbound is not None:
            # Only a bounce on a signed VERP address may stop mail to an address: anyone
            # can write a report quoting a Message-ID they have seen in References.
            hard = failure.permanent and verified
            _mark(ctx, outbound.rcpt_to, failure, hard=hard)
            _note(ctx, outbound, failure, hard=hard, verified=verified)
        kind = "hard" if failure.permanent else "soft"
        said.append(f"{kind} bounce for {failure.recipient}"
                    + (f" ({failure.status})" if failure.status else "")
                    + ("" if ours else " (matches no mail we sent to it)"))
    about = f" of outbound {outbound.id}" if outbound is not None else ""
    raise Drop(f"bounce{about}: " + "; ".join(said), keep=True)


def _trusted(failure: bounces.Failure, outbound: OutboundMail | None) -> bounces.Failure:
    """The failure as far as it is believed: prose naming another address than the one
    we sent to (an alias it expanded to, or a misread line) is not trusted to stop
    mail, so it counts as a soft bounce at most."""
    if failure.from_prose and outbound is not None and failure.recipient != outbound.rcpt_to:
        return replace(failure, permanent=False)
    return failure


def _from_a_daemon(ctx: Context) -> bool:
    """A report, or mail from a mail system (MAILER-DAEMON, postmaster), not a person's
    auto-reply (which RFC 3834 also sends from the null sender)."""
    sender = (ctx.parsed.sender.email if ctx.parsed.sender else "").partition("@")[0]
    return (ctx.parsed.content_type == "multipart/report"
            or sender in ("mailer-daemon", "postmaster")
            or screen.daemon_without_address(ctx.parsed) is not None)


def _verp_outbound(ctx: Context) -> OutboundMail | None:
    settings, signer = ctx.services.settings, ctx.services.signer
    for address in recipient_addresses(ctx.parsed, ctx.inbound.rcpt_to):
        mailbox = settings.mailbox_for(address)
        token = token_of(address, mailbox.local_part) if mailbox else None
        if token and is_bounce_token(token):
            outbound_id = signer.verify_bounce(token)
            if outbound_id is not None:
                return ctx.session.get(OutboundMail, outbound_id)
    return None


def _by_original(ctx: Context, message_id: str | None) -> OutboundMail | None:
    if message_id is None:
        return None
    return ctx.session.scalar(
        select(OutboundMail).where(OutboundMail.message_id == message_id).limit(1)
    )


def _robot_on_return_path(ctx: Context, outbound: OutboundMail) -> None:
    """Mail to our envelope sender is automatic by definition (people answer From or
    Reply-To): note it on the case and drop it, whatever its headers claim."""
    if outbound.case_id is not None:
        case = ctx.session.get(Case, outbound.case_id)
        if case is not None:
            sender = ctx.parsed.sender.email if ctx.parsed.sender else ctx.inbound.mail_from
            ctx.book.record(case, "automatic reply", sender, reason="sent to our return path",
                            subject=ctx.parsed.subject, inbound_id=ctx.inbound.id)
            raise Drop(f"automatic mail: sent to the return path of outbound {outbound.id}; "
                       f"noted on case {case.display_number}", keep=True)
    raise Drop(f"automatic mail: sent to the return path of outbound {outbound.id}")


def _note(ctx: Context, outbound: OutboundMail, failure: bounces.Failure, *,
          hard: bool, verified: bool) -> None:
    """Put the bounce, and the mark it sets, on the history of the mail's case."""
    case = ctx.session.get(Case, outbound.case_id) if outbound.case_id is not None else None
    if case is None:
        return
    ctx.book.record(case, "bounce", None, email=outbound.rcpt_to, outbound_id=outbound.id,
                    permanent=failure.permanent, status=failure.status,
                    diagnostic=failure.diagnostic, inbound_id=ctx.inbound.id,
                    verified=verified)
    if hard:
        ctx.book.record(case, "undeliverable", None, email=outbound.rcpt_to,
                        reason=failure.status or "hard bounce")


def _mark(ctx: Context, email: str, failure: bounces.Failure, *, hard: bool) -> None:
    insert_unless_present(ctx.session, RecipientStatus,
                          {"email": email, "undeliverable": False, "soft_bounces": 0},
                          ["email"])
    status = ctx.session.get(RecipientStatus, email, with_for_update=True)
    assert status is not None
    status.last_bounce_at = ctx.now
    if hard:
        status.undeliverable = True
        status.reason = " ".join(filter(None, (failure.status, failure.diagnostic)))[:500] or \
            "hard bounce"
    else:
        status.soft_bounces += 1
