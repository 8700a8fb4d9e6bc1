"""The case's clock: one row per service target a case is held to (first response,
next response, resolution), with the moments the sweeps and the case rules act on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from mailcase.store.models.base import Base, Clipped, UTCDateTime


class CaseTarget(Base):
    """A service target of a case: when it started, when it is due (in the business
    time of its calendar, paused time excluded), and whether it was warned, breached or
    met. A next-response target gets a new row for each customer reply it answers."""

    __tablename__ = "case_targets"
    __table_args__ = (
        # The sweeps look for running targets whose warning or due time has come.
        Index("ix_case_targets_due", "met_at", "paused_at", "due_at"),
        Index("ix_case_targets_warn", "met_at", "paused_at", "warn_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    name: Mapped[str] = mapped_column(Clipped(40))  # first_response, next_response, resolution
    sla: Mapped[str] = mapped_column(Clipped(255))  # the [[sla]] rule that set it
    calendar: Mapped[str] = mapped_column(Clipped(255))  # its [[business_hours]], or 24x7
    target_days: Mapped[int] = mapped_column(Integer, default=0)  # the duration: days…
    target_seconds: Mapped[int] = mapped_column(Integer, default=0)  # …then seconds
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: no warning
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def state(self) -> str:
        """``met``, ``breached``, ``paused``, ``warned`` or ``running``: the first that holds."""
        if self.met_at is not None:
            return "met"
        if self.breached_at is not None:
            return "breached"
        if self.paused_at is not None:
            return "paused"
        return "warned" if self.warned_at is not None else "running"
