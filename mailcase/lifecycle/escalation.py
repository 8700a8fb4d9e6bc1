"""Escalation: a service target's warning and its breach, each acted on exactly once.

The sweep looks for running targets whose warning or due time has come and acts on each
in a transaction of its own. A conditional UPDATE claims the target first (only the
first sweep to get there acts, however many instances run or however often it runs);
then the feed says so, the owner is alerted, and at a breach the case is marked
escalated, moved to its rule's ``escalate_status`` and ``reassign`` owner, and the
rule's ``alert`` agents are alerted too. A target past both its warning and its due
time (a daemon stopped over a weekend) gets the breach alone, once.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_, select, update
from sqlalchemy.orm import Session

from mailcase.cases.book import CaseBook
from mailcase.cases.errors import CaseError
from mailcase.cases.staff import Staff
from mailcase.config import Duration
from mailcase.lifecycle.casesweep import CaseSweep
from mailcase.store.db import changed_rows
from mailcase.store.models import Case, CaseTarget

log = logging.getLogger(__name__)

LABELS = {"first_response": "first response", "next_response": "next response",
          "resolution": "resolution"}


def due_targets(now: datetime) -> Select[int]:
    """Running targets whose warning or due time has come, soonest due first."""
    running = and_(CaseTarget.met_at.is_(None), CaseTarget.paused_at.is_(None),
                   CaseTarget.breached_at.is_(None))
    return (select(CaseTarget.id)
            .where(running, or_(CaseTarget.due_at <= now,
                                and_(CaseTarget.warned_at.is_(None),
                                     CaseTarget.warn_at <= now)))
            .order_by(CaseTarget.due_at, CaseTarget.id))


class Escalation(CaseSweep):
    """Acts on targets whose time has come, through the case rules."""

    def sweep(self, now: datetime) -> Counter[str]:
        """Warn and breach what is due at ``now``; counts of what was done."""
        return self.each(self.due(due_targets(now), now),
                         lambda session, target_id: self._act(session, target_id, now), now)

    def _act(self, session: Session, target_id: int, now: datetime) -> str | None:
        """Claim one target's warning or breach and carry it out; None when another
        sweep got there first, or the target moved on (met, paused, pushed later).

        The case is locked first, as every change to a case takes its lock before its
        targets' rows: the other order deadlocks with an agent's reply on PostgreSQL.
        The claim checks every condition again under that lock, the time included."""
        case_id = session.scalar(select(CaseTarget.case_id).where(CaseTarget.id == target_id))
        if case_id is None:
            return None
        case = session.scalar(select(Case).where(Case.id == case_id).with_for_update())
        target = session.get(CaseTarget, target_id, populate_existing=True)
        if case is None or target is None:
            return None
        breach = target.due_at <= now
        claim = [CaseTarget.id == target_id, CaseTarget.met_at.is_(None),
                 CaseTarget.paused_at.is_(None), CaseTarget.breached_at.is_(None)]
        if breach:  # a breach supersedes a warning not yet given
            claim.append(CaseTarget.due_at <= now)
            values = {"breached_at": now}
        else:
            claim += [CaseTarget.warned_at.is_(None), CaseTarget.warn_at <= now]
            values = {"warned_at": now}
        claimed = changed_rows(session, update(CaseTarget).where(*claim).values(**values)
                               .execution_options(synchronize_session=False))
        if claimed != 1:
            return None
        session.refresh(target)
        book = CaseBook(session, self.settings.cases, now, self.targets, self.hooks)
        view = self._view(target)
        if breach:
            self._breach(book, case, target, view)
        else:
            book.record(case, "target warning", None, target=target.name, sla=target.sla,
                        due_at=target.due_at.isoformat())
            self.notifier.target_alert(session, case, self.notifier.owners(case), now,
                                       template="sla_warning", target=view)
        log.info("case %s: %s %s (rule %s, due %s)", case.display_number, target.name,
                 "breached" if breach else "warning", target.sla, view["due_at"])
        return "breached" if breach else "warned"

    def _breach(self, book: CaseBook, case: Case, target: CaseTarget,
                view: dict[str, Any]) -> None:
        session, now = book.session, book.now
        case.is_escalated = True
        book.record(case, "target breached", None, target=target.name, sla=target.sla,
                    due_at=target.due_at.isoformat())
        rule = self.targets.named(target.sla)
        why = f"rule {target.sla}: {LABELS.get(target.name, target.name)} overdue"
        if rule is not None and not case.is_closed:
            if rule.escalate_status is not None and case.status != rule.escalate_status:
                book.set_status(case, rule.escalate_status, None)
            if rule.reassign is not None:
                try:
                    agents = book.assign(case, rule.reassign, None, why=why)
                except CaseError as exc:  # an agent or queue gone since the start
                    log.warning("case %s: not reassigned on breach: %s",
                                case.display_number, exc)
                else:
                    self.notifier.assigned(session, case, agents, now, why=why)
        staff = Staff(session)
        extra = [agent for address in (rule.alert if rule else ())
                 if (agent := staff.agent(address)) is not None]
        self.notifier.target_alert(session, case, [*self.notifier.owners(case), *extra], now,
                                   template="sla_breach", target=view)

    @staticmethod
    def _view(target: CaseTarget) -> dict[str, Any]:
        """The target as the alert templates get it."""
        return {"name": target.name, "label": LABELS.get(target.name, target.name),
                "target": str(Duration(target.target_days, target.target_seconds)),
                "sla": target.sla, "state": target.state,
                "due_at": target.due_at.strftime("%Y-%m-%d %H:%M UTC")}

