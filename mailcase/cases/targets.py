"""Service targets on a case, after Salesforce's entitlement milestones: which ``[[sla]]``
rule holds a case, when each target is due in its calendar's business time, and how the
case's own changes move them.

A target starts with the case (first response, resolution) or with a customer's reply
(next response); it stands still while the case is in a ``pauses_sla`` status; the first
public agent reply meets the response targets and the close meets them all; a reopening
sets the resolution target running again, the time closed counting as paused. The
sweeps that act when a target's time runs out are in mailcase.lifecycle; the metrics
frozen here (first response and resolution, wall and business seconds) are the case's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import holidays
from sqlalchemy import Select, Subquery, func, select
from sqlalchemy.orm import Session

from mailcase.cases.calendar import Calendar
from mailcase.config import Duration, Settings
from mailcase.config.clock import ALWAYS_OPEN, SlaSettings
from mailcase.store.models import Case, CaseTarget

FIRST_RESPONSE, NEXT_RESPONSE, RESOLUTION = "first_response", "next_response", "resolution"
RESPONSES = (FIRST_RESPONSE, NEXT_RESPONSE)


@dataclass(frozen=True)
class TargetRules:
    """The ``[[sla]]`` rules and the calendars they count in, built once per settings."""

    slas: tuple[SlaSettings, ...] = ()
    calendars: Mapping[str, Calendar] = field(
        default_factory=lambda: {ALWAYS_OPEN: Calendar.around_the_clock()})
    pauses: frozenset[str] = frozenset()
    mailbox_calendars: Mapping[str, str] = field(default_factory=dict)  # address: name

    @classmethod
    def of(cls, settings: Settings) -> TargetRules:
        calendars = {ALWAYS_OPEN: Calendar.around_the_clock()}
        for hours in settings.business_hours:
            public = (holidays.country_holidays(hours.country, subdiv=hours.subdivision)
                      if hours.country else frozenset())
            calendars[hours.name] = Calendar.of(hours.time_zone, hours.hours,
                                                hours.holidays, public)
        boxes = {box.address: box.business_hours for box in settings.mailbox
                 if box.business_hours is not None}
        return cls(settings.sla, calendars, frozenset(settings.cases.pauses_sla), boxes)

    def calendar(self, name: str | None) -> Calendar:
        """The calendar called ``name``; one no longer configured counts as 24x7."""
        return self.calendars.get(name or ALWAYS_OPEN) or self.calendars[ALWAYS_OPEN]

    def calendar_name(self, rule: SlaSettings | None, case: Case) -> str:
        """Which calendar ``case``'s targets count in: its rule's, else its mailbox's,
        else 24x7."""
        named = rule.business_hours if rule is not None else None
        return named or self.mailbox_calendars.get(case.mailbox) or ALWAYS_OPEN

    def named(self, name: str | None) -> SlaSettings | None:
        return next((rule for rule in self.slas if rule.name == name), None)

    def rule_for(self, case: Case) -> SlaSettings | None:
        """The first rule, in file order, whose conditions all hold for ``case``."""
        queue = case.owner_queue.name if case.owner_queue is not None else None
        for rule in self.slas:
            if ((not rule.priority or case.priority in rule.priority)
                    and (not rule.mailbox or case.mailbox in rule.mailbox)
                    and (not rule.queue or queue in rule.queue)
                    and (not rule.type or case.type in rule.type)):
                return rule
        return None


Record = Callable[..., None]  # CaseBook.record: (case, kind, actor, **detail)


class CaseClock:
    """Keeps one case's targets in step with its changes, inside the case rules'
    transaction (CaseBook calls it; nothing else should)."""

    def __init__(self, session: Session, rules: TargetRules, now: Callable[[], datetime],
                 record: Record) -> None:
        self.session = session
        self.rules = rules
        self._now = now  # the book's time: an imported mail's Date while it is recorded
        self.record = record

    @property
    def now(self) -> datetime:
        return self._now()

    def targets(self, case: Case) -> list[CaseTarget]:
        """Every target the case has had, oldest first."""
        return list(self.session.scalars(
            select(CaseTarget).where(CaseTarget.case_id == case.id).order_by(CaseTarget.id)))

    def _open(self, case: Case) -> list[CaseTarget]:
        """The targets not yet met (one indexed query: cases.id's targets)."""
        return [t for t in self.targets(case) if t.met_at is None]

    # -- which rule ------------------------------------------------------------------

    def fit(self, case: Case, *, history_until: datetime | None = None) -> None:
        """Hold ``case`` to the first rule that matches it now: on opening, and again
        when what rules look at (priority, queue, type) changes. A different rule
        replaces the targets not yet met, counted from the case's start — except one
        already breached, which stays until met: a breach that reassigns the case to a
        queue another rule covers must not start (and breach, and reassign) again.

        ``history_until``: the case is an archive's (imported), recorded now: a target
        whose time ran out before this is recorded as breached then, without alerts or
        escalation — history, not news."""
        rule = self.rules.rule_for(case)
        if (rule.name if rule else None) == case.sla:
            return
        replaced: dict[str, CaseTarget] = {}
        breached = set()
        for target in self._open(case):
            if target.breached_at is not None:
                breached.add(target.name)
            else:
                replaced[target.name] = target
                self.session.delete(target)
        if case.sla is not None or rule is not None:
            self.record(case, "sla", None, old=case.sla, new=rule.name if rule else None)
        case.sla = rule.name if rule else None
        if rule is None or case.is_closed:
            return
        paused = case.status in self.rules.pauses
        for name, duration in rule.targets().items():
            if name == NEXT_RESPONSE or name in breached or (
                    name == FIRST_RESPONSE and case.first_response_seconds is not None):
                continue  # a next response starts with a customer's reply
            target = self._add(case, rule, name, duration, case.created_at)
            if name in replaced:
                self._carry(replaced[name], target)
            elif paused:
                target.paused_at = self.now
            if history_until is not None and target.due_at <= history_until:
                target.breached_at = target.due_at
            if (history_until is not None and target.warn_at is not None
                    and target.warn_at <= history_until):
                target.warned_at = target.warn_at

    def _carry(self, old: CaseTarget, new: CaseTarget) -> None:
        """What a replaced target had lived through, onto its successor: the business
        time it stood still (its due time had been pushed on by that much), a pause
        under way, and a warning already given (not given twice)."""
        calendar = self.rules.calendar(old.calendar)
        length = Duration(old.target_days, old.target_seconds)
        stood = (calendar.between(old.started_at, old.due_at)
                 - calendar.between(old.started_at, calendar.add(old.started_at, length)))
        if stood > 0:
            later = self.rules.calendar(new.calendar)
            new.due_at = later.add(new.due_at, Duration(0, round(stood)))
            if new.warn_at is not None:
                new.warn_at = later.add(new.warn_at, Duration(0, round(stood)))
        new.paused_at, new.warned_at = old.paused_at, old.warned_at

    def _add(self, case: Case, rule: SlaSettings, name: str, duration: Duration,
             start: datetime) -> CaseTarget:
        calendar_name = self.rules.calendar_name(rule, case)
        calendar = self.rules.calendar(calendar_name)
        due = calendar.add(start, duration)
        warn = None
        if rule.warning:
            share = calendar.between(start, due) * rule.warning
            warn = calendar.add(start, Duration(0, round(share)))
        target = CaseTarget(
            case_id=case.id, name=name, sla=rule.name, calendar=calendar_name,
            target_days=duration.days, target_seconds=duration.seconds, started_at=start,
            due_at=due, warn_at=warn)
        self.session.add(target)
        self.session.flush()
        return target

    # -- what the case's changes do --------------------------------------------------

    def status_changed(self, case: Case, old: str, new: str) -> None:
        """Stop the clock on entering a waiting status, start it again on leaving one."""
        was, now = old in self.rules.pauses, new in self.rules.pauses
        if now and not was:
            for target in self._open(case):
                target.paused_at = target.paused_at or self.now
        elif was and not now:
            for target in self._open(case):
                self._resume(target)

    def _resume(self, target: CaseTarget) -> None:
        """Push the target's due (and warning) time on by the business time it stood still."""
        if target.paused_at is None:
            return
        calendar = self.rules.calendar(target.calendar)
        since, target.paused_at = target.paused_at, None
        if target.breached_at is None:
            left = calendar.between(since, target.due_at)
            target.due_at = calendar.add(self.now, Duration(0, round(left)))
        if target.warn_at is not None and target.warned_at is None:
            left = calendar.between(since, target.warn_at)
            target.warn_at = calendar.add(self.now, Duration(0, round(left)))

    def agent_replied(self, case: Case, actor: str | None) -> None:
        """A public agent reply: the first one freezes the first-response time; it meets
        every response target that is open."""
        if case.first_response_seconds is None:
            wall, business = self._elapsed(case)
            case.first_response_seconds, case.business_first_response_seconds = wall, business
        for target in self._open(case):
            if target.name in RESPONSES:
                self._meet(case, target, actor)

    def customer_replied(self, case: Case) -> None:
        """A customer's public reply, once the case has been answered, starts the
        next-response target of its rule (unless one is already running)."""
        rule = self.rules.named(case.sla)
        if (rule is None or rule.next_response is None or rule.next_response.zero
                or case.first_response_seconds is None or case.is_closed):
            return
        if any(t.name == NEXT_RESPONSE for t in self._open(case)):
            return
        target = self._add(case, rule, NEXT_RESPONSE, rule.next_response, self.now)
        if case.status in self.rules.pauses:
            target.paused_at = self.now

    def closed(self, case: Case, actor: str | None) -> None:
        """The close meets every open target and freezes the resolution time."""
        for target in self._open(case):
            self._meet(case, target, actor)
        case.resolution_seconds, case.business_resolution_seconds = self._elapsed(case)

    def reopened(self, case: Case, closed_at: datetime | None) -> None:
        """A reopened case's resolution target runs again; the time it was closed counts
        as paused, and its resolution time is no longer frozen."""
        case.resolution_seconds = case.business_resolution_seconds = None
        resolution = [t for t in self.targets(case) if t.name == RESOLUTION]
        if resolution and closed_at is not None:
            target = resolution[-1]
            target.met_at, target.paused_at = None, closed_at
            self._resume(target)

    def _meet(self, case: Case, target: CaseTarget, actor: str | None) -> None:
        target.met_at = self.now
        target.paused_at = None
        self.record(case, "target met", actor, target=target.name, sla=target.sla,
                    due_at=target.due_at.isoformat(), late=target.due_at < self.now)

    def _elapsed(self, case: Case) -> tuple[int, int]:
        """Wall-clock and business seconds from the case's start to now, business in
        the calendar its targets count in (its rule's, else its mailbox's, else 24x7)."""
        rule = self.rules.named(case.sla)
        calendar = self.rules.calendar(self.rules.calendar_name(rule, case))
        wall = max(0, round((self.now - case.created_at).total_seconds()))
        return wall, round(calendar.between(case.created_at, self.now))


def next_due_query(cases: Sequence[int] | None = None) -> Subquery:
    """Per case (of ``cases`` only, when given), when its soonest running (not met, not
    paused) target is due."""
    query = (select(CaseTarget.case_id, func.min(CaseTarget.due_at).label("due_at"))
             .where(CaseTarget.met_at.is_(None), CaseTarget.paused_at.is_(None))
             .group_by(CaseTarget.case_id))
    if cases is not None:
        query = query.where(CaseTarget.case_id.in_(cases))
    return query.subquery()


def clock_filtered(query: Select[Any], clock: str | None, next_due: Subquery) -> Select[Any]:
    """``query`` (over Case and ``next_due``) narrowed by the clock: ``due`` (a target
    running, soonest due first), ``escalated``, or ``breached`` (a target overdue and
    not met); None leaves it as it is."""
    if clock == "due":
        return (query.where(next_due.c.due_at.is_not(None), Case.is_closed.is_(False))
                .order_by(None).order_by(next_due.c.due_at, Case.number))
    if clock == "escalated":
        return query.where(Case.is_escalated.is_(True))
    if clock == "breached":
        overdue = select(CaseTarget.id).where(
            CaseTarget.case_id == Case.id, CaseTarget.breached_at.is_not(None),
            CaseTarget.met_at.is_(None))
        return query.where(overdue.exists())
    return query


def describe(target: CaseTarget) -> dict[str, Any]:
    """A target as ``cases show --json`` gives it."""
    return {
        "name": target.name, "sla": target.sla, "calendar": target.calendar,
        "target": str(Duration(target.target_days, target.target_seconds)),
        "started_at": target.started_at.isoformat(), "due_at": target.due_at.isoformat(),
        "warn_at": target.warn_at.isoformat() if target.warn_at else None,
        "met_at": target.met_at.isoformat() if target.met_at else None,
        "state": target.state,
    }
