"""Who writes and who answers: contacts and their accounts, agents and queues, and the
programs that act through the API with a key."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailcase.store.models.base import Base, Clipped, UTCDateTime

ROUND_ROBIN = "round-robin"  # each active member in turn
LEAST_BUSY = "least-busy"  # the active member with the fewest open cases
SHARED = "shared"  # the queue keeps the case; every active member hears of it
QUEUE_MODES = (ROUND_ROBIN, LEAST_BUSY, SHARED)


class Account(Base):
    """A customer company; a contact's cases default to it."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Clipped(255))
    domain: Mapped[str | None] = mapped_column(Clipped(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Contact(Base):
    """A person who writes to support, known by their lower-cased email address."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Clipped(320), unique=True)
    name: Mapped[str] = mapped_column(Clipped(255), default="")
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    account: Mapped[Account | None] = relationship()


class Agent(Base):
    """A support agent who can own cases and answer them."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(Clipped(320), unique=True)
    name: Mapped[str] = mapped_column(Clipped(255), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Gets every new-case alert, whoever owns the case.
    follow_all: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The console password's argon2id hash (mailcase agents set-password); None: this
    # agent signs in to the console only through a trusted proxy, if at all.
    password_hash: Mapped[str | None] = mapped_column(Clipped(255))


class ConsoleSession(Base):
    """An agent signed in to the web console: the cookie holds a secret, this row only
    its SHA-256, so a copy of the store signs no one in."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(Clipped(64), unique=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf: Mapped[str] = mapped_column(Clipped(64))  # what every form of the session carries
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)  # however much it is used

    agent: Mapped[Agent] = relationship()


class Queue(Base):
    """A group owner of cases, e.g. "Billing"."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Clipped(255), unique=True)
    email: Mapped[str | None] = mapped_column(Clipped(320))
    # How a case for the queue picks one of its active members.
    mode: Mapped[str] = mapped_column(Clipped(20), default=ROUND_ROBIN,
                                      server_default=ROUND_ROBIN)
    # Round-robin: how many cases the queue has handed out; the next member is this
    # modulo the active members, read and advanced under the queue row's lock.
    turn: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    members: Mapped[list[QueueMember]] = relationship(
        order_by="QueueMember.id", cascade="all, delete-orphan")


class QueueMember(Base):
    """An agent who takes cases for a queue."""

    __tablename__ = "queue_members"
    __table_args__ = (UniqueConstraint("queue_id", "agent_id",
                                       name="uq_queue_members_queue_agent"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_id: Mapped[int] = mapped_column(ForeignKey("queues.id"))
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"))

    agent: Mapped[Agent] = relationship()


class ApiKey(Base):
    """A key a program uses on the HTTP API: only a hash of its secret is kept; the
    key itself is shown once, when it is made."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Clipped(255))
    key_id: Mapped[str] = mapped_column(Clipped(32), unique=True)  # the key's public part
    secret_sha256: Mapped[str] = mapped_column(Clipped(64))
    scope: Mapped[str] = mapped_column(Clipped(20))  # read, write or admin
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
