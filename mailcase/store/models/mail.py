"""Mail as stored: the intake queue, the outbox, and the messages that belong to cases."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    false,
    literal_column,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

from mailcase.store.models.base import Base, CleanText, Clipped, Delivery, UTCDateTime

if TYPE_CHECKING:
    from mailcase.store.models.case import Case

# Message-IDs are clamped to this length before they are stored or indexed: RFC 5322
# allows 998-character lines, but a PostgreSQL B-tree entry must stay under ~2.7 kB.
MESSAGE_ID_MAX = 500


# The queues' partial indexes hold only pending rows; a claim names the status as this
# literal (not a bound parameter), or neither planner can prove the index applies.
PENDING: ColumnElement[str] = literal_column("'pending'")


class InboundMail(Base):
    """A mail as accepted: raw bytes and envelope, committed before the sender hears 250.

    ``status`` walks pending → processed | dropped | rejected | parked | held; nothing
    is deleted because it could not be processed, a parked mail can be replayed, and a
    held one (a reply whose writer proved too little) released by an operator.
    """

    __tablename__ = "inbound_mail"
    __table_args__ = (
        Index("ix_inbound_mail_due", "status", "next_attempt_at"),
        # The processor's claim (oldest pending first) reads only this: without it,
        # PostgreSQL walks the primary key past every mail ever processed.
        Index("ix_inbound_mail_pending", "id", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(Clipped(80), unique=True)
    source: Mapped[str] = mapped_column(Clipped(20))
    # The envelope sender: "" is the null sender <> of bounces, None means unknown
    # (e.g. piped in without --sender), which screening must not take for a bounce.
    mail_from: Mapped[str | None] = mapped_column(Clipped(998))
    rcpt_to: Mapped[list[str]] = mapped_column(JSON, default=list)
    message_id: Mapped[str | None] = mapped_column(Clipped(MESSAGE_ID_MAX))
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(Clipped(20), default="pending")
    outcome: Mapped[str | None] = mapped_column(CleanText)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by an operator's replay of mail screening took for automatic.
    skip_screening: Mapped[bool] = mapped_column(Boolean, default=False)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # True when this mail opened its case; False when it was added to one as a comment.
    opened_case: Mapped[bool] = mapped_column(Boolean, default=False)
    # When a parked mail from an IMAP mailbox was copied to its quarantine folder.
    quarantined_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An operator released this held reply: it joins its case (as a comment, never
    # with commands) although its writer proved too little.
    released: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    case: Mapped[Case | None] = relationship()


class OutboundMail(Delivery, Base):
    """One mail to one recipient, rendered once and written in the transaction that caused it."""

    __tablename__ = "outbound_mail"
    __table_args__ = (
        Index("ix_outbound_mail_due", "status", "next_attempt_at"),
        Index("ix_outbound_mail_recent", "rcpt_to", "created_at"),
        Index("ix_outbound_mail_pending", "id", sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(Clipped(40))
    mail_from: Mapped[str] = mapped_column(Clipped(998))
    rcpt_to: Mapped[str] = mapped_column(Clipped(320))
    message_id: Mapped[str] = mapped_column(Clipped(MESSAGE_ID_MAX))
    raw: Mapped[bytes] = mapped_column(LargeBinary)

    case: Mapped[Case | None] = relationship()


class Message(Base):
    """Every mail in or out of a case, with the headers that thread replies to it.

    The raw bytes stay on the inbound or outbound row it came from; they are the
    source of truth and anything parsed here can be rebuilt from them.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_sender_recent", "from_addr", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    direction: Mapped[str] = mapped_column(Clipped(10))
    message_id: Mapped[str | None] = mapped_column(Clipped(MESSAGE_ID_MAX), index=True)
    in_reply_to: Mapped[str | None] = mapped_column(CleanText)
    references: Mapped[str | None] = mapped_column(CleanText)
    from_addr: Mapped[str] = mapped_column(Clipped(998), default="")
    to_addrs: Mapped[str] = mapped_column(CleanText, default="")
    cc_addrs: Mapped[str] = mapped_column(CleanText, default="")
    subject: Mapped[str] = mapped_column(CleanText, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_mail.id"))
    outbound_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_mail.id"))
    # What the mail proved about its From (identity.authentication's verdict), inbound only.
    sender_auth: Mapped[str | None] = mapped_column(Clipped(500))

    inbound: Mapped[InboundMail | None] = relationship()
    outbound: Mapped[OutboundMail | None] = relationship()

    @property
    def raw(self) -> bytes | None:
        """The bytes as they came in or went out."""
        source = self.inbound or self.outbound
        return source.raw if source is not None else None


class Bounce(Base):
    """One recipient a bounce reported, tied to the outbound mail it came back for."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    inbound_id: Mapped[int] = mapped_column(ForeignKey("inbound_mail.id"), index=True)
    outbound_id: Mapped[int | None] = mapped_column(ForeignKey("outbound_mail.id"), index=True)
    recipient: Mapped[str] = mapped_column(Clipped(320), index=True)
    permanent: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str | None] = mapped_column(Clipped(20))
    diagnostic: Mapped[str | None] = mapped_column(CleanText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecipientStatus(Base):
    """Whether an address can be mailed: a hard bounce stops all mail to it until an
    operator clears it; soft bounces are counted."""

    __tablename__ = "recipient_status"

    email: Mapped[str] = mapped_column(Clipped(320), primary_key=True)
    undeliverable: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(CleanText)
    soft_bounces: Mapped[int] = mapped_column(Integer, default=0)
    last_bounce_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MailboxPoll(Base):
    """How polling one IMAP mailbox goes: the last pass that worked and the failures since.

    Written by the instance that polls the mailbox; read by health checks and by
    ``mailcase mailboxes`` to tell a quiet mailbox from a stalled poller.
    """

    __tablename__ = "mailbox_polls"

    address: Mapped[str] = mapped_column(Clipped(320), primary_key=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Failed passes in a row; 0 once a pass succeeds.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(CleanText)
