"""Finding cases by what they are: the filters behind ``cases list`` and the API's
``GET /cases``, as one query builder, so both doors list the same cases the same way.

Pages run from the newest case back. The cursor is the last case number a page gave:
new cases get higher numbers, so a page boundary never moves while cases arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.cases.errors import BadValue
from mailcase.cases.targets import clock_filtered, next_due_query
from mailcase.cases.views import SUMMARY_LOADS, case_summary
from mailcase.store.models import Agent, Case, Contact, Queue

CLOCK_FILTERS = ("due", "escalated", "breached")


@dataclass(frozen=True)
class CaseFilter:
    """Which cases: each condition given must hold. ``clock``: ``due`` (a target
    running; soonest due first instead of newest), ``escalated`` or ``breached``;
    ``before``: only numbers below it (the cursor of the page before)."""

    status: str | None = None
    open_only: bool = False
    owner: str | None = None  # an agent's address
    queue: str | None = None
    contact: str | None = None  # the contact's address
    unassigned: bool = False
    clock: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    before: int | None = None


def find(session: Session, wanted: CaseFilter, limit: int,
         statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    """Up to ``limit`` cases as ``case_summary`` rows, newest first; a status not among
    ``statuses`` is refused, as an update to it is."""
    if wanted.status is not None and wanted.status not in statuses:
        raise BadValue(f"unknown status {wanted.status!r}; known: {', '.join(statuses)}")
    if wanted.clock is not None and wanted.clock not in CLOCK_FILTERS:
        raise BadValue(f"unknown clock filter {wanted.clock!r}; known: "
                       f"{', '.join(CLOCK_FILTERS)}")
    next_due = next_due_query()
    query = (
        select(Case, next_due.c.due_at).outerjoin(next_due, next_due.c.case_id == Case.id)
        .order_by(Case.number.desc()).limit(limit).options(*SUMMARY_LOADS)
    )
    query = clock_filtered(query, wanted.clock, next_due)
    for condition in _conditions(wanted):
        query = query.where(condition)
    return [case_summary(case, due) for case, due in session.execute(query)]


def _conditions(wanted: CaseFilter) -> list[Any]:
    """The WHERE clauses ``wanted`` asks for."""
    found: list[Any] = []
    if wanted.status is not None:
        found.append(Case.status == wanted.status)
    if wanted.open_only:
        found.append(Case.is_closed.is_(False))
    if wanted.owner is not None:
        found.append(Case.owner_agent.has(Agent.email == wanted.owner.strip().lower()))
    if wanted.queue is not None:
        found.append(Case.owner_queue.has(Queue.name == wanted.queue.strip()))
    if wanted.contact is not None:
        found.append(Case.contact.has(Contact.email == wanted.contact.strip().lower()))
    if wanted.unassigned:
        found += [Case.owner_agent_id.is_(None), Case.owner_queue_id.is_(None)]
    if wanted.before is not None:
        found.append(Case.number < wanted.before)
    for column, after, before in ((Case.created_at, wanted.created_after,
                                   wanted.created_before),
                                  (Case.updated_at, wanted.updated_after,
                                   wanted.updated_before)):
        if after is not None:
            found.append(column >= after)
        if before is not None:
            found.append(column < before)
    return found
