"""Finding cases by what they are: the filters behind ``cases list`` and the API's
``GET /cases``, as one query builder, so both doors list the same cases the same way.

Pages run from the newest case back. The cursor is the last case number a page gave:
new cases get higher numbers, so a page boundary never moves while cases arrive. The
console sorts by other columns too (``Sort``); those pages are an offset, a page number
to a person, where a case arriving may shift a row onto the next page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, null, select
from sqlalchemy.orm import Session, aliased

from mailcase.cases.errors import BadValue
from mailcase.cases.targets import clock_filtered, next_due_query
from mailcase.cases.views import SUMMARY_LOADS, case_summary
from mailcase.store.models import Agent, Case, Contact, Queue

CLOCK_FILTERS = ("due", "escalated", "breached")
# The columns a list may be sorted by, as the console names them.
SORT_KEYS = ("number", "subject", "contact", "status", "priority", "owner", "due", "updated")
NULLABLE = ("contact", "owner", "due")  # sorted with the cases lacking one last


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


@dataclass(frozen=True)
class Sort:
    """An order for a list: one of SORT_KEYS, then the newest first among equals.
    Priority runs from High down when descending; cases with nothing due come last
    either way."""

    key: str = "number"
    descending: bool = True


def find(session: Session, wanted: CaseFilter, limit: int, statuses: tuple[str, ...],
         *, sort: Sort | None = None, offset: int = 0) -> list[dict[str, Any]]:
    """Up to ``limit`` cases as ``case_summary`` rows after the first ``offset``,
    newest first (``due``: soonest due first) unless ``sort`` says otherwise; a status
    not among ``statuses`` is refused, as an update to it is."""
    if wanted.status is not None and wanted.status not in statuses:
        raise BadValue(f"unknown status {wanted.status!r}; known: {', '.join(statuses)}")
    query = list_query(wanted, limit, sort=sort, offset=offset)
    found = session.execute(query).all()
    if _by_due(wanted, sort):
        return [case_summary(case, due) for case, due in found]
    # Otherwise the page's due times are looked up for its cases alone: joined to the
    # list, the per-case aggregate would be computed for every case and the page sorted
    # after it (PostgreSQL: 0.2 s for the list of recent changes at a million cases).
    ids = [case.id for case, _ in found]
    due: dict[int, Any] = dict(session.execute(select(next_due_query(cases=ids))).all())
    return [case_summary(case, due.get(case.id)) for case, _ in found]


def _by_due(wanted: CaseFilter, sort: Sort | None) -> bool:
    """Whether the list is chosen or ordered by when its cases are due."""
    return wanted.clock == "due" or (sort is not None and sort.key == "due")


def list_query(wanted: CaseFilter, limit: int, *, sort: Sort | None = None,
               offset: int = 0) -> Select[Any]:
    """The query ``find`` runs: cases, filtered, ordered and cut to a page, beside their
    next due time when the list is chosen or ordered by it (else NULL); BadValue for a
    clock filter or sort key that is not one."""
    if wanted.clock is not None and wanted.clock not in CLOCK_FILTERS:
        raise BadValue(f"unknown clock filter {wanted.clock!r}; known: "
                       f"{', '.join(CLOCK_FILTERS)}")
    next_due = next_due_query()
    if _by_due(wanted, sort):
        query = select(Case, next_due.c.due_at).outerjoin(
            next_due, next_due.c.case_id == Case.id)
    else:  # (find looks the page's due times up afterwards)
        query = select(Case, null().label("due_at"))
    query = (query.order_by(Case.number.desc()).limit(limit).options(*SUMMARY_LOADS))
    query = clock_filtered(query, wanted.clock, next_due)
    if sort is not None:
        if sort.key not in SORT_KEYS:
            raise BadValue(f"cannot sort by {sort.key!r}; known: {', '.join(SORT_KEYS)}")
        query = _sorted(query, sort, next_due.c.due_at)
    if offset:
        query = query.offset(offset)
    for condition in _conditions(wanted):
        query = query.where(condition)
    return query


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


def _sorted(query: Any, sort: Sort, due_at: Any) -> Any:
    """``query`` ordered by ``sort``, the case number breaking ties the same way."""
    number = Case.number.desc() if sort.descending else Case.number
    if sort.key == "number":
        return query.order_by(None).order_by(number)
    if sort.key == "contact":
        contact = aliased(Contact)
        query = query.outerjoin(contact, contact.id == Case.contact_id)
        key: Any = func.coalesce(contact.email, Case.supplied_email)  # as the list shows
    elif sort.key == "owner":
        agent, queue = aliased(Agent), aliased(Queue)
        query = (query.outerjoin(agent, agent.id == Case.owner_agent_id)
                 .outerjoin(queue, queue.id == Case.owner_queue_id))
        key = func.coalesce(agent.email, "queue:" + queue.name)
    elif sort.key == "priority":
        key = case({"High": 3, "Medium": 2, "Low": 1}, value=Case.priority, else_=0)
    else:
        key = {"subject": Case.subject, "status": Case.status, "due": due_at,
               "updated": Case.updated_at}[sort.key]
    ordered = key.desc() if sort.descending else key.asc()
    if sort.key in NULLABLE:
        # Only where there are nulls: PostgreSQL reads an index backwards as DESC NULLS
        # FIRST, so NULLS LAST on a column without nulls would sort the whole table.
        ordered = ordered.nulls_last()
    return query.order_by(None).order_by(ordered, number)
