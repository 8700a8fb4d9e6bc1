"""Is mail flowing? The checks behind ``/healthz``, read from the database.

Everything is read from the shared database at the time of the request, so the answer
covers the listener, its processing child and every instance on one PostgreSQL
database alike. Something is wrong when the database does not answer, a mailbox has
not been polled successfully for ``http.max_poll_age_seconds``, or mail has waited
longer than ``http.max_pending_seconds`` to be processed or sent. Parked mail is
reported (an operator should look) but does not fail the check: it is safe, and a
health check that stays red until someone replays a mail teaches people to ignore it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mailcase.config import Settings
from mailcase.store.models import InboundMail, MailboxPoll, OutboundMail


@dataclass(frozen=True)
class Check:
    """One thing looked at: whether it is fine, and what was seen."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class Report:
    """Every check and the figures they were made from."""

    checks: tuple[Check, ...]
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "failing",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
            **self.figures,
        }


def pending_since(session: Session, model: type[InboundMail] | type[OutboundMail],
                  now: datetime) -> tuple[int, float | None]:
    """How many rows of a queue wait, and for how many seconds the oldest due one has
    (served by the partial index of pending rows and the due index)."""
    depth, oldest = session.execute(select(func.count(), func.min(model.next_attempt_at))
                                    .where(model.status == "pending")).one()
    return int(depth or 0), (now - oldest).total_seconds() if oldest is not None else None


class HealthCheck:
    """Makes a Report from the database and the settings' thresholds."""

    def __init__(self, readers: sessionmaker[Session], settings: Settings,
                 clock: Callable[[], datetime]) -> None:
        self.readers = readers
        self.settings = settings
        self.clock = clock

    def report(self) -> Report:
        now = self.clock()
        try:
            with self.readers() as session:
                session.execute(text("SELECT 1"))
                return self._report(session, now)
        except SQLAlchemyError as exc:
            reason = (str(getattr(exc, "orig", None) or exc).splitlines() or ["?"])[0]
            return Report((Check("database", False, f"unreachable: {reason[:200]}"),))

    def _report(self, session: Session, now: datetime) -> Report:
        limits = self.settings.http
        inbound, inbound_age = pending_since(session, InboundMail, now)
        outbound, outbound_age = pending_since(session, OutboundMail, now)
        parked = session.scalar(select(func.count()).select_from(InboundMail)
                                .where(InboundMail.status == "parked")) or 0
        checks = [
            Check("database", True, "answers"),
            _age_check("inbound", inbound, inbound_age, limits.max_pending_seconds),
            _age_check("outbound", outbound, outbound_age, limits.max_pending_seconds),
            *self._mailboxes(session, now),
        ]
        figures = {
            "inbound_pending": inbound, "oldest_inbound_seconds": inbound_age,
            "outbound_pending": outbound, "oldest_outbound_seconds": outbound_age,
            "parked": int(parked),
        }
        return Report(tuple(checks), figures)

    def _mailboxes(self, session: Session, now: datetime) -> list[Check]:
        polls = {row.address: row for row in session.scalars(select(MailboxPoll))}
        limit = self.settings.http.max_poll_age_seconds
        checks = []
        for mailbox in self.settings.mailbox:
            if mailbox.imap is None:
                continue
            poll = polls.get(mailbox.address)
            last = poll.last_success_at if poll is not None else None
            if last is None:
                checks.append(Check(f"mailbox {mailbox.address}", False, "never polled"))
                continue
            age = (now - last).total_seconds()
            detail = f"last good poll {age:.0f} s ago"
            if poll is not None and poll.failures:
                detail += f"; {poll.failures} failure(s) since: {poll.last_error}"
            checks.append(Check(f"mailbox {mailbox.address}", age <= limit, detail))
        return checks


def _age_check(queue: str, depth: int, age: float | None, limit: float) -> Check:
    if age is None or age <= limit:
        return Check(queue, True, f"{depth} pending" + (f", oldest {age:.0f} s" if age else ""))
    return Check(queue, False, f"{depth} pending, oldest due {age:.0f} s ago (limit {limit:g} s)")
