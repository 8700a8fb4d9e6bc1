"""The answering stage: the acknowledgement a new case's sender gets, within its limits.

An acknowledgement is a courtesy; it must never cost the case. It is composed in a
savepoint, so a template or address problem is logged and noted while the case is
still recorded. The mailbox's auto-response rules pick the template (first match
wins). Imported archives are never answered; a sender gets at most one acknowledgement
per ``mailbox.auto_response_interval`` (RFC 3834 section 2: limit automatic responses
to the same sender), and none at all while it floods us (the flood breaker).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import func, select

from mailcase.cases.routing import Facts, holds
from mailcase.cases.staff import Staff
from mailcase.config import MailboxSettings
from mailcase.identity.tokens import Participant
from mailcase.outbound.compose import Recipient, Threaded, thread_of
from mailcase.outbound.notify import Sent
from mailcase.pipeline.context import Context
from mailcase.reading.parsing import ParsedMail
from mailcase.store.models import Agent, Comment, Message, OutboundMail

log = logging.getLogger(__name__)

QUIET_SOURCES = frozenset({"import"})  # archived mail was answered long ago


def acknowledge(ctx: Context) -> None:
    """Queue the auto-response to the sender of a new case, when one is due."""
    mailbox, sender = ctx.mailbox, ctx.sender
    if not ctx.new_case or mailbox is None or not mailbox.auto_response or sender is None:
        return
    if ctx.inbound.source in QUIET_SOURCES:
        return
    why_not = held_back(ctx, mailbox, sender.email)
    if why_not:
        ctx.notes.append(f"no acknowledgement: {why_not}")
        return
    template = choose_template(mailbox, ctx.parsed, sender.email, ctx.case_required.priority)
    if not template:
        ctx.notes.append("no acknowledgement: an auto-response rule says none")
        return
    # The case is new: the mail that opened it is its whole conversation so far.
    opening = ctx.message
    try:
        with ctx.session.begin_nested():
            queued = ctx.services.composer.queue(
                ctx.session, ctx.case_required,
                Recipient(sender.email, sender.name, Participant("c", sender.id)),
                template=template, kind="auto_response", now=ctx.now,
                auto_submitted="auto-replied",
                thread=thread_of([Threaded.of(opening)]
                                 if opening is not None and opening.message_id else []),
            )
        if queued is None:
            ctx.notes.append(f"no acknowledgement: {sender.email} is marked undeliverable")
    except Exception as exc:  # noqa: BLE001 - a failed courtesy must not cost the case
        log.error("acknowledgement failed inbound=%s message_id=%s: %s",
                  ctx.inbound.id, ctx.inbound.message_id, exc, extra=ctx.log_fields)
        ctx.notes.append(f"acknowledgement not sent: {exc}")


def notify(ctx: Context) -> None:
    """Tell everyone else on the case: collaborators of a new case, everyone of a reply."""
    if ctx.inbound.source in QUIET_SOURCES or ctx.case is None:
        return
    notifier, case = ctx.services.notifier, ctx.case
    quiet = _echo(ctx) if ctx.comment is not None and not ctx.new_case else None
    if quiet:
        log.warning("no notifications inbound=%s message_id=%s: %s", ctx.inbound.id,
                    ctx.inbound.message_id, quiet, extra=ctx.log_fields)
        ctx.notes.append(f"no notifications: {quiet}")
        return
    try:
        with ctx.session.begin_nested():
            if ctx.new_case:
                sent = notifier.logged(ctx.session, case, ctx.now)
                alerted = notifier.assigned(
                    ctx.session, case, [*ctx.alert, *Staff(ctx.session).followers()],
                    ctx.now, why=f"a new case ({ctx.routed_by or 'no owner'})")
                sent = Sent(sent.queued + alerted.queued)
            elif ctx.comment is not None:
                # Only a proven writer's headers are believed about who has the mail:
                # a forged Cc must not keep anyone from hearing of it.
                proven = ctx.standing is not None and ctx.standing.proven
                copied = [p.email for p in (*ctx.parsed.to, *ctx.parsed.cc)] if proven else []
                sent = notifier.comment(ctx.session, case, ctx.comment, ctx.now, copied)
            else:
                return
    except Exception as exc:  # noqa: BLE001 - the case is recorded; say what was not sent
        log.error("notifications failed inbound=%s message_id=%s: %s",
                  ctx.inbound.id, ctx.inbound.message_id, exc, extra=ctx.log_fields)
        ctx.notes.append(f"notifications not sent: {exc}")
        return
    if sent.queued:
        ctx.notes.append(f"{sent.queued} notification(s) queued")


def _echo(ctx: Context) -> str | None:
    """Why a reply should notify no one: it repeats its writer's earlier words on the case,
    or its writer floods the case. Two auto-responders on one case would otherwise mail
    each other through us forever."""
    comment, mailbox, sender = ctx.comment, ctx.mailbox, ctx.sender
    if comment is None or mailbox is None or sender is None:
        return None
    since = ctx.now - timedelta(seconds=mailbox.flood_seconds)
    earlier = ctx.session.scalars(
        select(Comment.body).where(
            Comment.case_id == comment.case_id, Comment.author_email == sender.email,
            Comment.id != comment.id, Comment.created_at > since,
        )
    ).all()
    if comment.body in earlier:
        return f"{sender.email} repeated an earlier comment word for word"
    if len(earlier) >= mailbox.flood_mails:
        return f"{sender.email} wrote {len(earlier) + 1} comments in {mailbox.flood_seconds:g} s"
    return _ping_pong(ctx, comment, since)


PING_PONG_COMMENTS = 4
"""Quick comments (two exchanges) after which two answerers are taken for robots."""
ROBOT_REPLY_SECONDS = 120.0
"""An answer this soon after our mail to its writer is a robot's pace, not a person's."""


def _ping_pong(ctx: Context, comment: Comment, since: datetime) -> str | None:
    """Why a comment looks like one of two automatic responders answering each other
    through us (their text changing each time, so no repeat gives them away): the last
    PING_PONG_COMMENTS comments on the case, none an agent's, came from two or more
    writers, each within ROBOT_REPLY_SECONDS of our last mail to its writer. Once muted
    the pair stays muted: every later answer of theirs is as quick."""
    recent = ctx.session.execute(
        select(Comment.author_email, Comment.author_kind, Comment.created_at)
        .where(Comment.case_id == comment.case_id, Comment.created_at > since)
        .order_by(Comment.id.desc()).limit(PING_PONG_COMMENTS)
    ).all()
    authors = [row.author_email for row in recent]
    if (len(recent) < PING_PONG_COMMENTS or any(r.author_kind == "agent" for r in recent)
            or None in authors or len(set(authors)) < 2):
        return None
    for row in recent:
        answered = ctx.session.scalar(
            select(func.max(OutboundMail.created_at)).where(
                OutboundMail.case_id == comment.case_id, OutboundMail.rcpt_to == row.author_email,
                OutboundMail.created_at <= row.created_at)
        )
        if answered is None or (row.created_at - answered).total_seconds() > ROBOT_REPLY_SECONDS:
            return None
    return (f"{' and '.join(sorted(set(authors)))} answered each other's notifications "
            f"{PING_PONG_COMMENTS} times within seconds (automatic responders?)")


def choose_template(
    mailbox: MailboxSettings, mail: ParsedMail, sender: str, priority: str
) -> str:
    """The template of the first rule whose conditions all hold; "acknowledgement" when
    none does; "" when the matching rule answers nothing."""
    facts = Facts(sender=sender, subject=mail.subject, body=mail.text, priority=priority)
    for rule in mailbox.auto_response_rule:
        if holds(rule, facts):
            return rule.template
    return "acknowledgement"


def held_back(ctx: Context, mailbox: MailboxSettings, email: str) -> str | None:
    """Why ``email`` gets no automatic answer now: its From failed authentication (an
    answer would be backscatter to whoever it names), it is an agent's (staff are not
    customers, and a forged agent must not be mailed), a recent answer, or a flood."""
    if ctx.standing is not None and ctx.standing.proof == "forged":
        return f"{email} failed sender authentication"
    agent = select(Agent.id).where(Agent.email == email, Agent.active.is_(True)).limit(1)
    if ctx.session.scalar(agent) is not None:
        return f"{email} is an agent"
    flood_since = ctx.now - timedelta(seconds=mailbox.flood_seconds)
    since = ctx.now - timedelta(seconds=mailbox.auto_response_interval)
    # Both questions in one statement: how much mail came from the sender lately, and
    # whether it was answered within the interval.
    received, recent = ctx.session.execute(select(
        select(func.count()).select_from(Message).where(
            Message.direction == "in", Message.from_addr == email,
            Message.created_at > flood_since,
        ).scalar_subquery(),
        select(OutboundMail.id).where(
            OutboundMail.rcpt_to == email, OutboundMail.kind == "auto_response",
            OutboundMail.created_at > since,
        ).limit(1).scalar_subquery(),
    )).one()
    received = received or 0
    if received > mailbox.flood_mails:
        log.warning("flood breaker: %s sent %d mails in %g s; no automatic answers to it",
                    email, received, mailbox.flood_seconds)
        return (f"{email} sent {received} mails in {mailbox.flood_seconds:g} s "
                "(flood breaker)")
    if recent is not None:
        return f"{email} got one in the last {mailbox.auto_response_interval:g} s"
    return None
