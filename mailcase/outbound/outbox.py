"""Deliver the outbox: claim due mail, hand it to the transport, record each result.

Rows are claimed by pushing their next attempt into the future (a lease) in a short
transaction, so no transaction stays open while we talk to the relay, and a crashed
sender's rows come due again by themselves; a slow batch renews the lease of what it
has not sent yet. Each result is committed as soon as the relay answers, so the one
window left is the one every at-least-once sender has: a crash between the relay's
250 and that commit sends that one mail again.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from mailcase.config import OutboundSettings
from mailcase.outbound.transports import Envelope, Result, Transport
from mailcase.store.models import Event, OutboundMail, RecipientStatus
from mailcase.store.models.mail import PENDING

log = logging.getLogger(__name__)

UNDELIVERABLE = "address marked undeliverable"

Clock = Callable[[], datetime]


def backoff(attempts: int, base: float, cap: float, jitter: bool = True) -> timedelta:
    """Exponential backoff after ``attempts`` failures, capped, with up to 20 % jitter."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    if jitter:
        delay *= 1 + random.random() * 0.2  # noqa: S311 - spreading retries needs no crypto
    return timedelta(seconds=delay)


def claim_query(now: datetime, limit: int) -> Select[OutboundMail]:
    """The oldest due pending mails, locked, skipping those another sender holds;
    served by the partial index of pending mail."""
    return (
        select(OutboundMail)
        .where(OutboundMail.status == PENDING, OutboundMail.next_attempt_at <= now)
        .order_by(OutboundMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


class OutboxSender:
    """Sends due outbound mail through one transport, batch by batch."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: Transport,
        settings: OutboundSettings,
        clock: Clock,
        jitter: bool = True,
    ) -> None:
        self.sessions = sessions
        self.transport = transport
        self.settings = settings
        self.clock = clock
        self.jitter = jitter

    def drain(self, stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        """Send batches until nothing is due, or until ``stop()`` says so between two;
        counts the mails sent, deferred and failed."""
        outcomes: Counter[str] = Counter()
        while not stop() and (batch := self._claim()):
            lease = Lease(self, [envelope.id for envelope in batch])
            for result in self.transport.deliver(batch):
                outcomes[self._record(result)] += 1
                lease.done(result.id)
        return outcomes

    @property
    def lease_seconds(self) -> float:
        """How long a claimed mail stays ours before another sender may take it."""
        return self.settings.timeout * 4 + 60

    def _claim(self) -> list[Envelope]:
        now = self.clock()
        with self.sessions.begin() as session:
            rows = session.scalars(claim_query(now, self.settings.batch_size)).all()
            blocked = set(session.scalars(
                select(RecipientStatus.email).where(
                    RecipientStatus.email.in_({r.rcpt_to for r in rows}),
                    RecipientStatus.undeliverable.is_(True),
                )
            )) if rows else set()
            for row in rows:
                if row.rcpt_to in blocked:  # a hard bounce came in after it was queued
                    row.status, row.last_error = "failed", UNDELIVERABLE
                    _on_case(session, row, "mail held", now, reason=UNDELIVERABLE)
                else:
                    row.next_attempt_at = now + timedelta(seconds=self.lease_seconds)
            return [Envelope(r.id, r.mail_from, r.rcpt_to, r.raw)
                    for r in rows if r.rcpt_to not in blocked]

    def extend(self, ids: list[int]) -> None:
        """Push the lease of mails still waiting in this batch further out."""
        until = self.clock() + timedelta(seconds=self.lease_seconds)
        with self.sessions.begin() as session:
            session.execute(
                update(OutboundMail)
                .where(OutboundMail.id.in_(ids), OutboundMail.status == "pending")
                .values(next_attempt_at=until)
            )

    def _record(self, result: Result) -> str:
        """Record one mail's result in its own transaction; returns sent, deferred or failed."""
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(OutboundMail, result.id, with_for_update=True)
            if row is None or row.status != "pending":
                return "skipped"
            row.attempts += 1
            row.last_error = None if result.verdict == "sent" else result.detail
            if result.verdict == "sent":
                row.status, row.sent_at = "sent", now
                log.info("outbound %s (%s) to %s delivered%s", row.id, row.kind, row.rcpt_to,
                         f": {result.detail}" if result.detail else "",
                         extra={"outbound": row.id})
                return "sent"
            if result.verdict == "permanent" or now >= row.deadline_at:
                row.status = "failed"
                _on_case(session, row, "mail failed", now, reason=result.detail)
                log.warning("outbound %s to %s failed: %s", row.id, row.rcpt_to, result.detail,
                            extra={"outbound": row.id})
                return "failed"
            row.next_attempt_at = now + backoff(
                row.attempts, self.settings.retry_base_seconds,
                self.settings.retry_max_seconds, self.jitter,
            )
            log.info("outbound %s to %s deferred: %s", row.id, row.rcpt_to, result.detail,
                     extra={"outbound": row.id})
            return "deferred"


def _on_case(session: Session, row: OutboundMail, kind: str, now: datetime,
             reason: str | None) -> None:
    """Note on the mail's case that it did not reach its recipient."""
    if row.case_id is not None:
        session.add(Event.of(row.case_id, kind, None, now, email=row.rcpt_to,
                             outbound_id=row.id, mail=row.kind, reason=reason))


class Lease:
    """Keeps the rest of a batch claimed while a slow relay works through it."""

    def __init__(self, sender: OutboxSender, ids: list[int]) -> None:
        self.sender = sender
        self.waiting = dict.fromkeys(ids)
        self.renew_at = sender.clock() + timedelta(seconds=sender.lease_seconds / 2)

    def done(self, mail_id: int) -> None:
        self.waiting.pop(mail_id, None)
        if self.waiting and self.sender.clock() >= self.renew_at:
            self.sender.extend(list(self.waiting))
            self.renew_at = self.sender.clock() + timedelta(
                seconds=self.sender.lease_seconds / 2
            )
