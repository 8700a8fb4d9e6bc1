"""Declarative base and column types shared by every table of mailcase's store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Named constraints let Alembic migrations drop and alter them on both engines.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always read back timezone-aware.

    SQLite has no time zones; PostgreSQL does. Storing naive UTC on both and attaching
    UTC on the way out gives the same values on either engine.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


def clean_text(value: str) -> str:
    """Text any engine can store: no NUL characters (PostgreSQL refuses them) and no lone
    surrogates (left by bytes that were not UTF-8, e.g. in an SMTP envelope)."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogateescape" if _only_escapes(value) else "replace")\
            .decode("utf-8", "replace")
    return value


def _only_escapes(value: str) -> bool:
    return all(not 0xD800 <= ord(c) <= 0xDFFF or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


class Clipped(TypeDecorator[str]):
    """A bounded string column that clips what is too long instead of failing the write.

    Values come from mail headers, which can be any length; the raw message keeps them
    whole, so a name or subject cut to the column's size loses nothing. SQLite would
    store the long value and PostgreSQL refuse it: clipping makes both behave alike.
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.max = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(value)[: self.max]


class CleanText(TypeDecorator[str]):
    """An unbounded text column, cleaned of what PostgreSQL cannot store."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else clean_text(value)


class Base(DeclarativeBase):
    """Every mailcase table."""

    metadata = MetaData(naming_convention=NAMING)


class Delivery:
    """The columns of something sent and retried until a deadline (outbound mail, a
    webhook event): where it stands, its tries, and the far end's last answer."""

    status: Mapped[str] = mapped_column(Clipped(20), default="pending")  # sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(CleanText)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
