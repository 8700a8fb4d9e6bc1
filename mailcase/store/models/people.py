"""Who writes and who answers: contacts and their accounts, agents and queues."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from mailcase.store.models.base import Base, Clipped, UTCDateTime


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


class Queue(Base):
    """A group owner of cases, e.g. "Billing"."""

    __tablename__ = "queues"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Clipped(255), unique=True)
    email: Mapped[str | None] = mapped_column(Clipped(320))
