"""Write outbound mail into the outbox, rendered once, in the transaction that caused it.

This is the planning half of the transactional outbox: the processor and the CLI call
``Composer.queue`` inside their own transaction, so a notification exists exactly when
the change that caused it does. Delivery is the ``outbox`` module's job.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.config import MailboxSettings, Settings
from mailcase.identity.addresses import OwnAddresses
from mailcase.identity.tokens import Participant, TokenSigner
from mailcase.outbound import mimebuild
from mailcase.outbound.templates import Templates
from mailcase.reading.screen import LOOP_HEADER
from mailcase.store.models import Case, Event, Message, OutboundMail, RecipientStatus

REFERENCES_KEPT = 10


@dataclass(frozen=True)
class Recipient:
    """Someone a mail goes to, and who they are in the case's reply tokens."""

    email: str
    name: str
    participant: Participant
    collaborator: bool = False  # may leave the case: their mail offers List-Unsubscribe


def undeliverable(session: Session, email: str) -> bool:
    """Whether a hard bounce has marked ``email`` as not to be mailed."""
    status = session.get(RecipientStatus, email.lower())
    return status is not None and status.undeliverable


def case_tag(case: Case) -> str:
    """The tag that marks a subject as belonging to a case: ``[Case #00001000]``."""
    return f"[Case #{case.display_number}]"


class Composer:
    """Renders templates into complete mails and queues them, one row per recipient."""

    def __init__(self, settings: Settings, templates: Templates, signer: TokenSigner) -> None:
        self.settings = settings
        self.templates = templates
        self.signer = signer
        self.own = OwnAddresses.of(settings)

    def queue(
        self,
        session: Session,
        case: Case,
        recipient: Recipient,
        *,
        template: str,
        kind: str,
        now: datetime,
        auto_submitted: str | None,
        extra: dict[str, Any] | None = None,
        files: Sequence[tuple[str, str, bytes]] = (),
        thread: tuple[str | None, list[str]] | None = None,
    ) -> OutboundMail | None:
        """Render ``template`` for ``recipient`` and add it to the outbox (not yet committed).

        Returns None, queuing nothing, when the address is marked undeliverable (noted
        on the case's history) or is one of mailcase's own (in any spelling): mailcase
        never mails itself.
        """
        if parseaddr(recipient.email)[1] != recipient.email or "," in recipient.email:
            raise ValueError(f"{recipient.email!r} is not one plain address")
        if self.own.owns(recipient.email):
            return None
        if undeliverable(session, recipient.email):
            # Skipped, not held: a stale notification sent weeks later, once the address
            # is cleared, would mislead. The case's history says who missed what.
            session.add(Event.of(case.id, "mail skipped", None, now, email=recipient.email,
                                 template=template, reason="undeliverable"))
            return None
        mailbox = self._mailbox(case)
        token = self.signer.make(case.number, recipient.participant)
        reply_address = f"{mailbox.local_part}+{token}@{mailbox.domain}"
        context = {
            "case": _case_view(case),
            "recipient": {"email": recipient.email, "name": recipient.name},
            "mailbox": {"address": mailbox.address, "name": mailbox.name},
            "reply_address": reply_address,
            **(extra or {}),
        }
        rendered = self.templates.render(template, context)
        subject = rendered.subject
        if case_tag(case) not in subject:
            subject = f"{case_tag(case)} {subject}".strip()
        message_id = f"<{uuid.uuid4().hex}.{case.display_number}@{mailbox.domain}>"
        parent, references = thread if thread is not None else conversation(session, case)

        headers = [
            ("From", _address(mailbox.name, mailbox.address)),
            ("To", _address(recipient.name, recipient.email)),
            ("Reply-To", _address(mailbox.name, reply_address)),
            ("Subject", subject),
            ("Date", format_datetime(now)),
            ("Message-ID", message_id),
        ]
        if parent:
            headers += [("In-Reply-To", parent), ("References", " ".join(references))]
        if auto_submitted:
            # RFC 3834 section 5, and Exchange's own way of keeping out-of-office replies
            # away. Only on automatic mail: an agent's answer is a person's, and the
            # customer's vacation notice to it is news the agent should see.
            headers += [("Auto-Submitted", auto_submitted), ("X-Auto-Response-Suppress", "All")]
        headers += [
            (LOOP_HEADER, mailbox.address),
            ("X-Mailcase-Case", case.display_number),
        ]
        if recipient.collaborator:
            # RFC 2369: mail clients show an unsubscribe button; it mails the
            # collaborator's own token address with the subject "unsubscribe".
            headers.append(("List-Unsubscribe", f"<mailto:{reply_address}?subject=unsubscribe>"))
        if recipient.email.isascii() and mailbox.address.isascii():
            raw = mimebuild.build(headers, rendered.text, rendered.html, files)
        else:
            raw = _internationalised(headers, rendered.text, rendered.html, files)

        row = OutboundMail(
            case_id=case.id, kind=kind, mail_from=mailbox.address, rcpt_to=recipient.email,
            message_id=message_id, raw=raw, status="pending", attempts=0,
            next_attempt_at=now, created_at=now,
            deadline_at=now + timedelta(hours=self.settings.outbound.retry_deadline_hours),
        )
        session.add(row)
        session.flush()  # the id names the mail in its VERP return path
        row.mail_from = self._return_path(mailbox, row.id)
        session.add(Message(
            case_id=case.id, direction="out", message_id=message_id, in_reply_to=parent,
            references=" ".join(references) or None, from_addr=mailbox.address,
            to_addrs=recipient.email, subject=subject, created_at=now, outbound=row,
        ))
        return row

    def _return_path(self, mailbox: MailboxSettings, outbound_id: int) -> str:
        """The envelope sender: a VERP address naming this mail, so its bounce finds it."""
        configured = self.settings.outbound.from_
        if configured:
            return configured
        if not self.settings.outbound.verp:
            return mailbox.address
        token = self.signer.make_bounce(outbound_id)
        return f"{mailbox.local_part}+{token}@{mailbox.domain}"

    def _mailbox(self, case: Case) -> MailboxSettings:
        return self.settings.mailbox_for(case.mailbox) or self.settings.mailbox[0]


def _internationalised(headers: Sequence[tuple[str, str]], text: str, html: str | None,
                       files: Sequence[tuple[str, str, bytes]]) -> bytes:
    """A mail to or from an internationalised address (RFC 6532): the whole header block
    is UTF-8, and the outbox asks the relay for SMTPUTF8. Rare; the modern email API
    does it right."""
    mail = EmailMessage(policy=policy.SMTPUTF8)
    for name, value in headers:
        mail[name] = value
    mail.set_content(text)
    if html is not None:
        mail.add_alternative(html, subtype="html")
    for filename, content_type, content in files:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(content, maintype=maintype or "application",
                            subtype=subtype or "octet-stream", filename=filename)
    return mail.as_bytes()


def _address(name: str, email: str) -> str:
    """A header mailbox: RFC 2047 for an ASCII address's name, plain UTF-8 otherwise."""
    if email.isascii():
        return formataddr((name, email))
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}" <{email}>' if name else email


def _case_view(case: Case) -> dict[str, Any]:
    return {
        "number": case.display_number, "subject": case.subject, "status": case.status,
        "priority": case.priority, "description": case.description,
        "resolution": case.resolution, "tag": case_tag(case),
    }


@dataclass(frozen=True)
class Threaded:
    """One mail of a case as threading sees it: its Message-ID, direction and the
    References (or, lacking them, In-Reply-To) it carried, oldest first."""

    message_id: str
    direction: str
    references: tuple[str, ...] = ()

    @classmethod
    def of(cls, message: Any) -> Threaded:
        """From a Message (or a row of its columns) that has a Message-ID."""
        return cls(message.message_id, message.direction,
                   tuple((message.references or message.in_reply_to or "").split()))


def conversation(session: Session, case: Case) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for a new mail on ``case`` (see ``thread_of``)."""
    rows = session.execute(
        select(Message.message_id, Message.direction, Message.references, Message.in_reply_to)
        .where(Message.case_id == case.id, Message.message_id.is_not(None))
        .order_by(Message.id)
    ).all()
    return thread_of([Threaded.of(row) for row in rows])


def thread_of(messages: Sequence[Threaded]) -> tuple[str | None, list[str]]:
    """In-Reply-To and References for a new mail after ``messages`` (oldest first).

    The parent is the newest mail the customer side sent (else the newest of ours):
    the one every recipient was told about. References follow RFC 5322 section 3.6.4:
    the parent's own References (else its In-Reply-To), then the parent — the chain of
    mails it answered, not every mail of the case — with the case's first mail, its
    root, in front where the chain does not start with it. A long chain is trimmed in
    the middle: the root and the newest REFERENCES_KEPT - 1 stay (RFC 5322 allows it;
    clients thread by the root and the newest).
    """
    if not messages:
        return None, []
    inbound = [m for m in messages if m.direction == "in"]
    parent = (inbound or list(messages))[-1]
    root = messages[0].message_id  # the case's first mail, whoever sent it
    chain = list(dict.fromkeys((root, *parent.references, parent.message_id)))
    if len(chain) > REFERENCES_KEPT:
        chain = [chain[0], *chain[-(REFERENCES_KEPT - 1):]]
    return parent.message_id, chain
