"""Process accepted mail: one transaction per message, retried with backoff, parked at last.

The processor claims the oldest due inbound row (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several instances share the work), runs PIPELINE inside a savepoint and
commits the case changes, the outbox rows and the row's new status together. An
unexpected error rolls all of it back and, in a fresh transaction, counts an attempt;
after ``processing.max_attempts`` the mail is parked, never deleted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases import CaseBook
from mailcase.db import WriterGate
from mailcase.models import InboundMail
from mailcase.models.mail import PENDING
from mailcase.outbox import backoff
from mailcase.pipeline.context import Context, Outcome, Services
from mailcase.pipeline.stages import PIPELINE

log = logging.getLogger(__name__)

ERROR_TEXT_MAX = 2000


def claim_query(now: datetime, inbound_id: int | None = None) -> Select[InboundMail]:
    """The oldest due pending mail (or the one given), locked, skipped if another
    worker holds it; served by the partial index of pending mail."""
    query = (
        select(InboundMail)
        .where(InboundMail.status == PENDING)
        .order_by(InboundMail.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return (query.where(InboundMail.id == inbound_id) if inbound_id is not None
            else query.where(InboundMail.next_attempt_at <= now))


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

    def drain(self, stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        """Process every due message, or until ``stop()`` says so between two; counts
        how each ended (processed, dropped, parked, or pending for a retry)."""
        outcomes: Counter[str] = Counter()
        while not stop() and (status := self._process(None)) is not None:
            outcomes[status] += 1
        return outcomes

    def process_next(self) -> bool:
        """Process the oldest due message; False when none is due."""
        return self._process(None) is not None

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
            book=CaseBook(session, self.services.settings.cases, now), now=now,
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
        row.processed_at = now
        case = ctx.case.display_number if ctx.case is not None and row.case_id else "-"
        log.info(
            "processed inbound=%s message_id=%s status=%s case=%s%s", row.id, row.message_id,
            row.status, case, f" ({row.outcome})" if row.outcome else "",
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
            exc_info=exc,
        )
        return "parked" if parked else "pending"
