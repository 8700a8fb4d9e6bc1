"""The stages of inbound processing, each a small function over the Context.

PIPELINE at the bottom is the order they run in. A stage ends a message only by
raising an Outcome (Drop or Park); any other exception is unexpected and retried.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, text

from mailcase.cases import files, replies, routing
from mailcase.cases.errors import CaseError
from mailcase.cases.staff import Staff
from mailcase.identity import eligibility
from mailcase.identity.authentication import UNCHECKED
from mailcase.pipeline.actions import carry_out, explain
from mailcase.pipeline.bounce import take_bounces
from mailcase.pipeline.context import Context, Drop, Park
from mailcase.pipeline.matching import find_case, landing, recipient_addresses, role_of
from mailcase.pipeline.respond import acknowledge, held_back, notify
from mailcase.pipeline.writer import authenticate, authorize
from mailcase.reading import commands, parsing, replytext, screen, webform
from mailcase.reading.thanks import only_thanks
from mailcase.store.models import Case, Message
from mailcase.store.models.base import clean_text

log = logging.getLogger(__name__)


def parse(ctx: Context) -> None:
    """Read the raw bytes into a ParsedMail; mail that cannot be read at all is parked at
    once with the reason (retrying cannot make it readable)."""
    try:
        ctx.mail = parsing.parse(ctx.raw_slices)
    except (RecursionError, MemoryError, ValueError, LookupError, TypeError) as exc:
        raise Park(f"unreadable mail: {type(exc).__name__}: {exc}") from exc
    ctx.notes.extend(ctx.mail.notes)
    date = ctx.mail.date
    if ctx.inbound.source == "import" and date is not None and date < ctx.now:
        # An archive's cases and comments keep the time they were written; its cases'
        # targets that ran out before today are history (cases.targets).
        ctx.book.history_until = ctx.now
        ctx.now = ctx.book.now = date


def route(ctx: Context) -> None:
    """Pick the support mailbox the mail was sent to (envelope first, then headers); mail
    to postmaster@ goes to the first mailbox of that domain."""
    settings = ctx.services.settings
    addresses = recipient_addresses(ctx.parsed, ctx.inbound.rcpt_to)
    for address in addresses:
        ctx.mailbox = settings.mailbox_for(address)
        if ctx.mailbox is not None:
            return
    domains = [a.rpartition("@")[2] for a in addresses]
    ctx.mailbox = next((box for domain in domains for box in settings.mailbox
                        if box.domain == domain), settings.mailbox[0])


def skip_known(ctx: Context) -> None:
    """Drop a copy of a mail that is already on a case (it came again by another path)."""
    message_id = ctx.parsed.message_id
    if message_id is None or ctx.inbound.skip_screening:
        return
    if ctx.session.get_bind().dialect.name == "postgresql":
        # Two instances holding copies of one mail wait for each other here, so the
        # second sees the first's message instead of opening a second case.
        ctx.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:id, 0))"),
            {"id": clean_text(message_id)},
        )
    known = ctx.session.execute(
        select(Message.direction, Case.number).join(Case, Case.id == Message.case_id)
        .where(Message.message_id == message_id).limit(1)
    ).first()
    if known is not None:
        what = "our own mail" if known.direction == "out" else "a copy of a mail"
        raise Drop(f"duplicate: {what} already on case {known.number:08d}")


def screen_robots(ctx: Context) -> None:
    """Drop automatic mail: it never opens a case and is never answered."""
    if ctx.inbound.skip_screening:
        ctx.notes.append("screening skipped by an operator's replay")
        return
    own = frozenset(m.address for m in ctx.services.settings.mailbox)
    reason = screen.robot_reason(ctx.parsed, ctx.inbound.mail_from, own)
    if not reason:
        return
    case = _case_answered(ctx)
    if case is None:
        raise Drop(f"automatic mail: {reason}")
    # An out-of-office answer to one of our mails: worth knowing on the case, but it
    # notifies nobody, reopens nothing and is never answered.
    sender = ctx.parsed.sender.email if ctx.parsed.sender else ctx.inbound.mail_from
    ctx.book.record(case, "automatic reply", sender, reason=reason,
                    subject=ctx.parsed.subject, inbound_id=ctx.inbound.id)
    raise Drop(f"automatic mail: {reason}; noted on case {case.display_number}", keep=True)


def _case_answered(ctx: Context) -> Case | None:
    """The case whose mail an automatic reply answers (VERP, token or thread), if any."""
    if ctx.verp_outbound is not None and ctx.verp_outbound.case_id is not None:
        return ctx.session.get(Case, ctx.verp_outbound.case_id)
    services = ctx.services
    found = find_case(ctx.session, ctx.parsed, ctx.inbound.rcpt_to, services.settings,
                      services.signer)
    return found.case if found is not None and found.by != "subject tag" else None


def identify(ctx: Context) -> None:
    """Find or create the contact who wrote the mail (From, else the envelope sender).

    Mail that claims to be from one of our own addresses (any spelling or plus-form) is
    a loop or a forgery: it never becomes a contact and is never answered.
    """
    sender = ctx.parsed.sender
    email = sender.email if sender else (ctx.inbound.mail_from or "").strip("<> ").lower()
    if "@" not in email:
        raise Drop("no sender address")
    if ctx.services.own.owns(email):
        raise Drop(f"from our own address {email}")
    ctx.sender = ctx.book.contact(email, sender.name if sender else "")


def match(ctx: Context) -> None:
    """Find the case this mail replies to, if any (whether it may join: writer.authorize).

    A Web-to-Case form always opens a case of its own: its writer typed a subject, not a
    reply, and a case tag in it proves no part in that case.
    """
    if ctx.inbound.source == webform.SOURCE:
        return
    services = ctx.services
    ctx.match = find_case(
        ctx.session, ctx.parsed, ctx.inbound.rcpt_to, services.settings, services.signer,
    )
    if ctx.match is not None and ctx.match.merged is not None:
        ctx.notes.append(f"case {ctx.match.merged} is merged: the mail goes to case "
                         f"{ctx.match.case.display_number}")


def record(ctx: Context) -> None:
    """Add the mail to its case as a comment, or open a new case with it."""
    if ctx.match is not None:
        ctx.case = _case_for_reply(ctx, ctx.match.case)
    if ctx.case is None:
        _open_case(ctx)
    elif not ctx.new_case:  # (a follow-up case was opened with this mail already)
        _add_reply(ctx, ctx.case)
    # (The inbound row learns its case with its final status, in one UPDATE: processor.)




def _case_for_reply(ctx: Context, case: Case) -> Case | None:
    """The case a reply goes to: a closed case is reopened, or followed up by a new child,
    as its mailbox says (cases.replies.after_close). An agent's reply, and a customer's
    that only says thanks, are recorded on the closed case as it is."""
    if not case.is_closed or ctx.acting_agent is not None:
        return case  # an agent's reply is recorded on the case as it is
    if _only_thanks(ctx, case):
        ctx.notes.append("thanks on closed case, not reopened")
        return case
    if replies.after_close(ctx.services.settings, case, ctx.now) == "reopen":
        ctx.book.reopen(case, ctx.sender.email if ctx.sender else None)
        return case
    follow_up = ctx.session.scalar(
        select(Case).where(Case.parent_id == case.id, Case.is_closed.is_(False))
        .order_by(Case.id.desc()).limit(1).with_for_update()
    )
    if follow_up is not None:  # later replies join the follow-up already opened
        return follow_up
    ctx.notes.append(f"follow-up of closed case {case.display_number}")
    _open_case(ctx, parent=case)
    return ctx.case


def _only_thanks(ctx: Context, case: Case) -> bool:
    """Whether a reply to a closed case is the customer side's thanks and nothing more: no
    command, no file, and new text that only thanks (reading.thanks is conservative: a
    question or more than a short line is not thanks). "Thank you, that fixed it" must
    not reopen what it thanks for."""
    sender = ctx.sender
    if sender is None or ctx.parsed.attachments:
        return False
    if role_of(ctx.session, case, sender.email) not in ("contact", "collaborator"):
        return False
    text, orders = commands.extract(replytext.comment_text(ctx.parsed))
    return not orders and only_thanks(text)


def _open_case(ctx: Context, parent: Case | None = None) -> None:
    mail, sender = ctx.parsed, ctx.sender
    mailbox = ctx.mailbox.address if ctx.mailbox else ctx.services.settings.mailbox[0].address
    # A follow-up starts from what the reply adds, not from the history it quotes.
    description = replytext.comment_text(mail) if parent is not None else mail.text
    box = ctx.services.settings.mailbox_for(mailbox)
    web = ctx.inbound.source == webform.SOURCE
    case, clipped = ctx.book.open(
        subject=mail.subject or "(no subject)", description=description, mailbox=mailbox,
        contact=sender, parent=parent,
        origin=webform.ORIGIN if web else box.origin if box else "Email",
        priority=(box.priority if box else None) or _priority(mail),
        type=box.type if box else None, reason=box.reason if box else None,
    )
    if web:
        # Only the Web-to-Case door stores rows of this source: the same headers in a
        # mail from anywhere else are anyone's words and set nothing.
        case.supplied_company, case.supplied_phone = webform.supplied(mail)
    ctx.case, ctx.new_case = case, True
    _assign(ctx, case, mail)
    ctx.message = _store_message(ctx, case)
    _collaborators_from_copies(ctx, case)
    comment_id = None
    if clipped:  # the description holds 32 KB; the whole text stays readable as a comment
        comment_id = ctx.book.comment(
            case, mail.text, author_email=sender.email if sender else None,
            author_name=sender.name if sender else None, author_kind="contact", public=True,
            message_id=ctx.message.id,
        ).id
    _store_attachments(ctx, case, ctx.message, comment_id)


def _assign(ctx: Context, case: Case, mail: parsing.ParsedMail) -> None:
    """Give the new case to the owner the rules, its mailbox or the default name. An
    owner that is not there (an agent deactivated since the rules were checked) passes
    the case to the next one named, with the reason in the log and on the inbound mail;
    when none is left it stays unassigned."""
    # A From that failed authentication proves no sender: rules on senders do not see it.
    forged = ctx.standing is not None and ctx.standing.proof == "forged"
    facts = routing.Facts(sender="" if forged else case.supplied_email or "",
                          subject=mail.subject, body=mail.text, priority=case.priority,
                          mailbox=case.mailbox, headers=mail.headers)
    for chosen in routing.routes(ctx.services.settings, facts):
        try:
            with ctx.session.begin_nested():
                ctx.alert = ctx.book.assign(case, chosen.owner, None, why=chosen.why)
        except CaseError as exc:  # deactivated since the rules were checked: the next
            log.warning("case %s: %s names %s: %s; trying the next owner",
                        case.display_number, chosen.why, chosen.owner, exc,
                        extra=ctx.log_fields)
            ctx.notes.append(f"{chosen.why} names {chosen.owner}: {exc}")
            continue
        ctx.routed_by = chosen.why
        return


def _collaborators_from_copies(ctx: Context, case: Case, *, reply: bool = False) -> None:
    """The other people a mail was addressed to join its case, as policy allows.

    Only for a mail that starts a conversation, or whose writer is proven: a reply that
    opens a case of its own (a follow-up, or one whose writer was not on the case it
    found) copies the old thread's people, whom an unproven writer must not enrol; nor
    may a From that failed authentication. On a ``reply`` to the case, the policy is
    measured against the case's contact (as for /cc), agents are never enrolled, and
    refusals are only noted: a reply-all copies the same people again and again.
    Refusals of a new mail are explained to a proven writer, or to its sender within
    the acknowledgement's limits.
    """
    sender, mailbox, standing = ctx.sender, ctx.mailbox, ctx.standing
    if sender is None or mailbox is None:
        return
    on_case = {c.email for c in case.collaborators} | {case.supplied_email or ""}
    copies = [p for p in (*ctx.parsed.to, *ctx.parsed.cc)
              if p.email != sender.email and p.email not in on_case
              and not ctx.services.own.owns(p.email)]
    if not copies:
        return
    proven = standing is not None and standing.proven
    if standing is not None and standing.proof == "forged":
        ctx.notes.append("no collaborators from the copies: the From failed authentication")
        return
    if ctx.found_by is not None and not proven:
        ctx.notes.append("no collaborators from the copies of a reply whose writer is not "
                         "proven")
        return
    settings = ctx.services.settings
    reference = (case.supplied_email or sender.email) if reply else sender.email
    refused = []
    for person in copies:
        if reply and Staff(ctx.session).agent(person.email) is not None:
            continue
        reason = eligibility.refusal(settings, mailbox, reference, person.email)
        if reason is not None:
            refused.append(f"{person.email} not made a collaborator: {reason}")
            continue
        try:
            ctx.book.add_collaborator(case, person.email, person.name, sender.email)
        except CaseError as exc:
            refused.append(str(exc))
            break
    if not refused:
        return
    ctx.notes.extend(refused)
    # To an unproven sender of a new mail only within the acknowledgement's limits: one
    # such mail per interval, none in a flood, so no forged From is mailed twice.
    if not reply and ctx.inbound.source != "import" and mailbox.collaborators != "none" and (
            proven or held_back(ctx, mailbox, sender.email) is None):
        explain(ctx, case, refused)


def _priority(mail: parsing.ParsedMail) -> str:
    """The priority the sender's client marked (X-Priority 1-2 / 4-5, Importance)."""
    x_priority = (mail.header("x-priority") or "").strip()[:1]
    importance = (mail.header("importance") or mail.header("priority") or "").strip().lower()
    if x_priority in ("1", "2") or importance in ("high", "urgent"):
        return "High"
    if x_priority in ("4", "5") or importance in ("low", "non-urgent"):
        return "Low"
    return "Medium"


def _add_reply(ctx: Context, case: Case) -> None:
    mail, sender = ctx.parsed, ctx.sender
    message = _store_message(ctx, case)
    ctx.message = message
    is_contact = sender is not None and case.contact_id == sender.id
    text, orders = commands.extract(replytext.comment_text(mail))
    if mail.subject.strip().lower() == "unsubscribe" and ctx.match and ctx.match.by == "token":
        # The List-Unsubscribe button of a collaborator's notification: leave, say nothing.
        orders, text = [*orders, commands.Command("unsubscribe", "")], ""
    agent = ctx.acting_agent
    # "/internal" anywhere keeps the text private whoever wrote it: words meant for
    # agents must never reach a customer because the command was misplaced.
    internal = ctx.reply_internal or any(c.name == "internal" for c in orders)
    if orders and sender is not None:
        carry_out(ctx, case, orders, agent, proven=ctx.may_command)
        # After a /merge the words go where the case went, as every later reply does.
        case = ctx.case = landing(ctx.session, case)
    comment = None
    if text or not orders:  # a reply of commands only adds no empty comment
        comment = ctx.book.comment(
            case, text or replytext.comment_text(mail),
            author_email=sender.email if sender else None,
            author_name=sender.name if sender else None,
            author_kind="agent" if agent else "contact" if is_contact else "participant",
            public=not internal, message_id=message.id,
        )
    ctx.comment = comment
    if agent is not None and comment is not None and comment.public:
        _hold_after_answer(ctx, case, agent.email, orders)
    # People the writer copies later join too, as on the first mail (policy, limit 20);
    # not from an internal note, whose copies are agents' business, not the customer's.
    if not internal:
        _collaborators_from_copies(ctx, case, reply=True)
    _store_attachments(ctx, case, message, comment.id if comment else None)


def _hold_after_answer(ctx: Context, case: Case, agent: str,
                       orders: list[commands.Command]) -> None:
    """An agent's public answer puts the case on hold when its mailbox says so
    (hold_on_reply), unless the answer gave a status command of its own."""
    if any(order.name in commands.STATUS for order in orders):
        return
    if replies.holds_on_reply(ctx.services.settings, case):
        before = case.status
        replies.hold(ctx.book, case, agent)
        if case.status != before:
            ctx.notes.append(f"put in status {case.status}: the mailbox holds a case an "
                             "agent answered (hold_on_reply)")


def _store_message(ctx: Context, case: Case) -> Message:
    mail = ctx.parsed
    message = Message(
        case_id=case.id, direction="in", message_id=mail.message_id,
        in_reply_to=" ".join(mail.in_reply_to) or None,
        references=" ".join(mail.references) or None,
        from_addr=mail.sender.email if mail.sender else ctx.inbound.mail_from,
        to_addrs=", ".join(a.email for a in mail.to),
        cc_addrs=", ".join(a.email for a in mail.cc), subject=mail.subject,
        created_at=ctx.now, inbound_id=ctx.inbound.id,
        sender_auth=None if ctx.auth is UNCHECKED else str(ctx.auth),
    )
    ctx.session.add(message)
    ctx.session.flush()
    return message


def _store_attachments(ctx: Context, case: Case, message: Message, comment_id: int | None) -> None:
    """List every file on the case; store the content of those within the size limit once
    per distinct content (the raw mail keeps them all)."""
    limit = ctx.services.settings.attachments.max_size
    for part in ctx.parsed.attachments:
        files.store(ctx.session, case, filename=part.filename, content_type=part.content_type,
                    content=part.content, limit=limit, message_id=message.id,
                    comment_id=comment_id, content_id=part.content_id)
        if len(part.content) > limit:
            ctx.notes.append(f"{part.filename} ({len(part.content)} bytes) is over "
                             f"attachments.max_size; kept in the raw mail only")


PIPELINE = (
    parse, route, skip_known, take_bounces, screen_robots, identify, authenticate, match,
    authorize, record, acknowledge, notify,
)
