"""Process accepted mail: a savepoint per message, retried with backoff, parked at last.

The processor claims the oldest due inbound rows (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several instances share the work), runs PIPELINE for each inside a
savepoint and commits the case changes, the outbox rows and the rows' new statuses
together. A burst is processed up to ``processing.batch_size`` mails per transaction:
one commit (one fsync, one turn at SQLite's write lock) for the batch instead of one
per mail. A batch ends early when it has run for BATCH_SECONDS or when new mail waits
for SQLite's write lock, so senders never wait behind a long batch.

An unexpected error rolls the whole batch back; its mails are then processed one per
transaction, so only the failing one counts an attempt (in a fresh transaction);
after ``processing.max_attempts`` it is parked, never deleted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, defer, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from mailcase.cases.book import CaseBook
from mailcase.logs import about
from mailcase.outbound.outbox import backoff
from mailcase.pipeline.context import Context, Outcome, Services
from mailcase.pipeline.stages import PIPELINE
from mailcase.store.db import WriterGate
from mailcase.store.models import InboundMail
from mailcase.store.models.mail import PENDING

log = logging.getLogger(__name__)

ERROR_TEXT_MAX = 2000
# A batch stops taking more mail after this long, so its commit (and with it the
# outbox rows it planned, and the write lock on SQLite) is never held back for long.
BATCH_SECONDS = 0.1


def claim_query(
    now: datetime, inbound_id: int | None = None, limit: int = 1
) -> Select[InboundMail]:
    """The oldest due pending mail (or the one given), up to ``limit`` rows, locked and
    skipped if another worker holds them; served by the partial index of pending mail."""
    query = (
        select(InboundMail)
        .where(InboundMail.status == PENDING)
        .order_by(InboundMail.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (query.where(InboundMail.id == inbound_id) if inbound_id is not None
            else query.where(InboundMail.next_attempt_at <= now))


@dataclass
class _Batch:
    """How far a batch got: how many mails it claimed, which it ran through the
    pipeline, and the one in hand (id, Message-ID) when something failed."""

    claimed: int = 0
    done: list[int] = field(default_factory=list)
    in_hand: tuple[int, str | None] | None = None


SMALL_MAIL = 256 * 1024
"""Mails up to this size are read for the whole batch in one query."""


def _read_small_mails(session: Session, rows: Sequence[InboundMail]) -> None:
    """The raw bytes of the batch's small mails in one statement instead of one each."""
    small = [row.id for row in rows if row.size <= SMALL_MAIL]
    if not small:
        return
    raw = {row_id: data for row_id, data in session.execute(
        select(InboundMail.id, InboundMail.raw).where(InboundMail.id.in_(small)))}
    for row in rows:
        if row.id in raw:
            set_committed_value(row, "raw", raw[row.id])


class Processor:
    """Drains the intake queue through the pipeline."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        services: Services,
        clock: Callable[[], datetime],
        jitter: bool = True,
        gate: WriterGate | None = None,
    ) -> None:
        self.sessions = sessions
        self.services = services
        self.clock = clock
        self.jitter = jitter
        self.gate = gate or WriterGate(None)

    def drain(
        self,
        stop: Callable[[], bool] = lambda: False,
        progress: Callable[[int], None] | None = None,
    ) -> Counter[str]:
        """Process every due message, or until ``stop()`` says so between two mails;
        counts how each ended (processed, dropped, parked, or pending for a retry).
        ``progress`` hears the running total after each batch."""
        outcomes: Counter[str] = Counter()
        while not stop() and (statuses := self.process_batch(stop)):
            outcomes.update(statuses)
            if progress is not None:
                progress(outcomes.total())
        return outcomes

    def process_next(self) -> bool:
        """Process the oldest due message; False when none is due."""
        return self._process(None) is not None

    def process_batch(self, stop: Callable[[], bool] = lambda: False) -> list[str]:
        """Process the oldest due messages in one transaction, as many as the batch
        takes (``stop()`` ends it after the mail in hand); returns how each ended, in
        order (empty when none was due)."""
        size = self.services.settings.processing.batch_size
        if size <= 1:
            status = self._process(None)
            return [] if status is None else [status]
        batch = _Batch()
        try:
            with self.gate.turn(), self.sessions.begin() as session:
                # A large mail's bytes are read (in slices) when its turn comes and every
                # mail's are let go after it, so a batch holds one large mail at a time.
                claim = claim_query(self.clock(), limit=size).options(defer(InboundMail.raw))
                rows = session.scalars(claim).all()
                batch.claimed = len(rows)
                _read_small_mails(session, rows)
                return self._run_batch(session, rows, stop, batch)
        except Exception as exc:
            if not batch.claimed:
                raise  # the store itself is failing; the caller backs off
            return self._recover(batch, exc)

    def _run_batch(
        self, session: Session, rows: Sequence[InboundMail], stop: Callable[[], bool],
        batch: _Batch,
    ) -> list[str]:
        """Run the pipeline over ``rows`` in order until the batch's time is up, new mail
        is waiting for the write lock, or ``stop()``; the rest stay pending."""
        deadline = time.monotonic() + BATCH_SECONDS
        statuses = []
        for row in rows:
            batch.in_hand = (row.id, row.message_id)
            self._run(session, row, self.clock())
            session.expire(row, ["raw"])
            batch.in_hand = None
            batch.done.append(row.id)
            statuses.append(row.status)
            if time.monotonic() >= deadline or self.gate.wanted() or stop():
                break
        return statuses

    def _recover(self, batch: _Batch, exc: Exception) -> list[str]:
        """After a batch was rolled back: the mails done before the failure get a
        transaction each, the one in hand counts an attempt, the rest stay pending. When
        the commit itself failed, no mail is to blame and each gets a try of its own."""
        log.warning("a batch of %d mails was rolled back (%s: %s); processing them one "
                    "by one", len(batch.done) + (batch.in_hand is not None),
                    type(exc).__name__, exc)
        statuses = [self.process(inbound_id) for inbound_id in batch.done]
        if batch.in_hand is not None:
            statuses.append(self._count_failure(*batch.in_hand, exc))
        return statuses

    def process(self, inbound_id: int) -> str:
        """Process one pending message now, if no one else is; returns its status."""
        status = self._process(inbound_id)
        if status is None:
            with self.sessions() as session:
                row = session.get(InboundMail, inbound_id)
                return row.status if row is not None else "unknown"
        return status

    def _process(self, inbound_id: int | None) -> str | None:
        """Claim and process one due message (the given one, else the oldest).

        Returns the status it ended with ("pending" when it will be retried), or None
        when there was nothing to claim.
        """
        now = self.clock()
        claimed: tuple[int, str | None] | None = None
        query = claim_query(now, inbound_id)
        try:
            with self.gate.turn(), self.sessions.begin() as session:
                row = session.scalars(query).first()
                if row is None:
                    return None
                claimed = (row.id, row.message_id)
                self._run(session, row, now)
                return row.status
        except Exception as exc:
            if claimed is None:
                raise  # the store itself is failing; the caller backs off
            return self._count_failure(claimed[0], claimed[1], exc)

    def _run(self, session: Session, row: InboundMail, now: datetime) -> None:
        ctx = Context(
            inbound=row, session=session, services=self.services,
            book=CaseBook(session, self.services.settings.cases, now, self.services.targets,
                          self.services.webhooks),
            now=now,
        )
        savepoint = session.begin_nested()
        try:
            for stage in PIPELINE:
                stage(ctx)
        except Outcome as outcome:
            (savepoint.commit if outcome.keep else savepoint.rollback)()
            row.status, row.outcome, row.case_id = outcome.status, outcome.reason, None
            row.opened_case = False
        except BaseException:
            savepoint.rollback()
            raise
        else:
            savepoint.commit()
            row.status, row.outcome = "processed", "; ".join(ctx.notes) or None
            if ctx.case is not None:
                row.case_id, row.opened_case = ctx.case.id, ctx.new_case
        row.processed_at = now
        case = ctx.case.display_number if ctx.case is not None and row.case_id else "-"
        log.info(
            "processed inbound=%s message_id=%s status=%s case=%s%s", row.id, row.message_id,
            row.status, case, f" ({row.outcome})" if row.outcome else "",
            extra=about(row.id, row.message_id, case=case),
        )

    def _count_failure(self, inbound_id: int, message_id: str | None, exc: Exception) -> str:
        """Record a failed attempt in its own transaction; park after the last one."""
        settings = self.services.settings.processing
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(InboundMail, inbound_id, with_for_update=True)
            if row is None or row.status != "pending":
                return row.status if row is not None else "unknown"
            row.attempts += 1
            row.last_error = f"{type(exc).__name__}: {exc}"[:ERROR_TEXT_MAX]
            if row.attempts >= settings.max_attempts:
                row.status = "parked"
                row.outcome = f"parked after {row.attempts} failed attempts"
            else:
                row.next_attempt_at = now + backoff(
                    row.attempts, settings.retry_base_seconds, settings.retry_max_seconds,
                    self.jitter,
                )
            attempts, parked = row.attempts, row.status == "parked"
        log.error(
            "processing failed inbound=%s message_id=%s attempt=%d%s",
            inbound_id, message_id, attempts, " (parked for an operator)" if parked else "",
            exc_info=exc, extra=about(inbound_id, message_id),
        )
        return "parked" if parked else "pending"
