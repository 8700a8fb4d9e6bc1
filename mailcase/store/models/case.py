"""The case and what hangs off it: comments, attachments, collaborators and the event feed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailcase.store.models.base import Base, CleanText, Clipped, UTCDateTime
from mailcase.store.models.people import Account, Agent, Contact, Queue

SUBJECT_MAX = 255
DESCRIPTION_MAX_BYTES = 32 * 1024


class Counter(Base):
    """A named sequence (case numbers) incremented under a row lock on either engine."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(Clipped(40), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class Case(Base):
    """A support case, after Salesforce's Case object."""

    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_owner_open", "owner_agent_id", "is_closed"),
        # The hold sweep: cases waiting on the customer, oldest first.
        Index("ix_cases_waiting", "waiting_since"),
        # The console's lists: open cases newest first, and by their last change.
        Index("ix_cases_open_number", "is_closed", "number"),
        Index("ix_cases_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    subject: Mapped[str] = mapped_column(Clipped(SUBJECT_MAX), default="")
    description: Mapped[str] = mapped_column(CleanText, default="")
    status: Mapped[str] = mapped_column(Clipped(40), index=True)
    is_closed: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(Clipped(20), default="Medium")
    origin: Mapped[str] = mapped_column(Clipped(40), default="Email")
    reason: Mapped[str | None] = mapped_column(Clipped(255))
    type: Mapped[str | None] = mapped_column(Clipped(80))
    resolution: Mapped[str | None] = mapped_column(CleanText)
    mailbox: Mapped[str] = mapped_column(Clipped(320))
    supplied_email: Mapped[str | None] = mapped_column(Clipped(320))
    supplied_name: Mapped[str | None] = mapped_column(Clipped(255))
    supplied_company: Mapped[str | None] = mapped_column(Clipped(255))
    supplied_phone: Mapped[str | None] = mapped_column(Clipped(64))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    owner_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    owner_queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # A case merged into another is closed; its mail threads into that one. No foreign
    # key in the schema (migration 0005 says why): the case rules alone set it.
    merged_into_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_closed_on_create: Mapped[bool] = mapped_column(Boolean, default=False)
    is_escalated: Mapped[bool] = mapped_column(Boolean, default=False)
    has_unread_comments_for_owner: Mapped[bool] = mapped_column(Boolean, default=False)
    # The case's clock: the [[sla]] rule holding it (None: no targets); since when it
    # waits on the customer in the hold status, and whether they were reminded; the
    # times to its first public agent reply and to its close, in wall-clock and in
    # business seconds, frozen when they happen.
    sla: Mapped[str | None] = mapped_column(Clipped(255))
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    business_first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    business_resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    # The contact's answer to the satisfaction survey: good or bad, a comment, when.
    satisfaction: Mapped[str | None] = mapped_column(Clipped(10))
    satisfaction_comment: Mapped[str | None] = mapped_column(CleanText)
    satisfaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    contact: Mapped[Contact | None] = relationship()
    account: Mapped[Account | None] = relationship()
    owner_agent: Mapped[Agent | None] = relationship()
    owner_queue: Mapped[Queue | None] = relationship()
    parent: Mapped[Case | None] = relationship(remote_side=[id])
    merged_into: Mapped[Case | None] = relationship(
        primaryjoin="foreign(Case.merged_into_id) == remote(Case.id)", viewonly=True)
    comments: Mapped[list[Comment]] = relationship(
        back_populates="case", order_by="Comment.id", cascade="all, delete-orphan"
    )
    collaborators: Mapped[list[Collaborator]] = relationship(
        back_populates="case", order_by="Collaborator.id", cascade="all, delete-orphan"
    )

    @property
    def display_number(self) -> str:
        """The number as people see it: zero-padded to eight digits."""
        return f"{self.number:08d}"

    @property
    def owner_name(self) -> str | None:
        """The owner as people name it: the agent's address, else ``queue:NAME``."""
        if self.owner_agent is not None:
            return self.owner_agent.email
        return f"queue:{self.owner_queue.name}" if self.owner_queue is not None else None


class Comment(Base):
    """New text added to a case: public (mailed) or internal (agents only)."""

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    body: Mapped[str] = mapped_column(CleanText)
    author_email: Mapped[str | None] = mapped_column(Clipped(320))
    author_name: Mapped[str | None] = mapped_column(Clipped(255))
    author_kind: Mapped[str] = mapped_column(Clipped(20))
    public: Mapped[bool] = mapped_column(Boolean)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="comments")
    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")


class Blob(Base):
    """Attachment content, stored once per distinct content hash."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(Clipped(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    """A file that came with a message, listed on the case and on its comment."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    comment_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id"))
    filename: Mapped[str] = mapped_column(Clipped(255))
    content_type: Mapped[str] = mapped_column(Clipped(255))
    content_id: Mapped[str | None] = mapped_column(Clipped(255))
    size: Mapped[int] = mapped_column(Integer)
    # None when the file was over attachments.max_size: listed, kept only in the raw mail.
    blob_sha256: Mapped[str | None] = mapped_column(ForeignKey("blobs.sha256"))


class Collaborator(Base):
    """Someone kept informed of a case by mail; at most twenty per case."""

    __tablename__ = "collaborators"
    __table_args__ = (UniqueConstraint("case_id", "email", name="uq_collaborators_case_email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    email: Mapped[str] = mapped_column(Clipped(320))
    name: Mapped[str] = mapped_column(Clipped(255), default="")
    added_by: Mapped[str | None] = mapped_column(Clipped(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship(back_populates="collaborators")


class Event(Base):
    """One entry of a case's feed: what changed, who did it and when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(Clipped(40))
    actor: Mapped[str | None] = mapped_column(Clipped(320))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    @classmethod
    def of(cls, case_id: int, kind: str, actor: str | None, when: datetime,
           **detail: Any) -> Event:
        """A feed entry, as the case rules and the outbox (bounces, skipped and failed
        mail) both write them."""
        return cls(case_id=case_id, kind=kind, actor=actor, detail=detail, created_at=when)
