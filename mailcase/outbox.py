"""Deliver the outbox: claim due mail, hand it to the transport, record each result.

Rows are claimed by pushing their next attempt into the future (a lease) in a short
transaction, so no transaction stays open while we talk to the relay, and a crashed
sender's rows come due again by themselves. The cost is the one window every
at-least-once sender has: a crash between the relay's 250 and our commit sends that
mail again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.config import OutboundSettings
from mailcase.models import OutboundMail
from mailcase.transports import Envelope, Result, Transport

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def backoff(attempts: int, base: float, cap: float, jitter: bool = True) -> timedelta:
    """Exponential backoff after ``attempts`` failures, capped, with up to 20 % jitter."""
    delay = min(cap, base * 2 ** max(0, attempts - 1))
    if jitter:
        delay *= 1 + random.random() * 0.2  # noqa: S311 - spreading retries needs no crypto
    return timedelta(seconds=delay)


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

    def drain(self) -> int:
        """Send batches until nothing is due; returns how many mails were handled."""
        handled = 0
        while batch := self._claim():
            self._record(self.transport.deliver(batch))
            handled += len(batch)
        return handled

    def _claim(self) -> list[Envelope]:
        now = self.clock()
        lease = timedelta(seconds=self.settings.timeout * 4 + 60)
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(OutboundMail)
                .where(OutboundMail.status == "pending", OutboundMail.next_attempt_at <= now)
                .order_by(OutboundMail.id)
                .limit(self.settings.batch_size)
                .with_for_update(skip_locked=True)
            ).all()
            for row in rows:
                row.next_attempt_at = now + lease
            return [Envelope(r.id, r.mail_from, r.rcpt_to, r.raw) for r in rows]

    def _record(self, results: list[Result]) -> None:
        now = self.clock()
        with self.sessions.begin() as session:
            for result in results:
                row = session.get(OutboundMail, result.id)
                if row is None or row.status != "pending":
                    continue
                row.attempts += 1
                row.last_error = None if result.verdict == "sent" else result.detail
                if result.verdict == "sent":
                    row.status, row.sent_at = "sent", now
                elif result.verdict == "permanent" or now >= row.deadline_at:
                    row.status = "failed"
                    log.warning("outbound %s to %s failed: %s", row.id, row.rcpt_to, result.detail)
                else:
                    row.next_attempt_at = now + backoff(
                        row.attempts, self.settings.retry_base_seconds,
                        self.settings.retry_max_seconds, self.jitter,
                    )
                    log.info("outbound %s to %s deferred: %s", row.id, row.rcpt_to, result.detail)
