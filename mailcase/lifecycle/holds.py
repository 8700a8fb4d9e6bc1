"""Cases waiting on the customer: a reminder, then the close, each once.

A case in ``cases.hold_status`` counts from ``waiting_since`` (set by the case rules
when it entered that status; a customer's reply takes it out, which cancels both). At
``auto_close_after - remind_before`` the contact gets ``hold_reminder``; at
``auto_close_after`` the case is closed with ``auto_close_resolution`` and the contact
and collaborators get ``auto_closed``. After downtime a case past both is closed
without a late reminder.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from mailcase.cases.book import CaseBook
from mailcase.lifecycle.casesweep import CaseSweep
from mailcase.store.db import changed_rows
from mailcase.store.models import Case

log = logging.getLogger(__name__)



class Holds(CaseSweep):
    """Reminds and closes cases that waited on the customer too long."""

    def sweep(self, now: datetime) -> Counter[str]:
        """Remind and close what is due at ``now``; counts of what was done."""
        rules = self.settings.cases
        if rules.auto_close_after is None or rules.hold_status is None:
            return Counter()
        close_after = timedelta(seconds=rules.auto_close_after.wall_seconds)
        remind = timedelta(seconds=rules.remind_before.wall_seconds
                           if rules.remind_before else 0)
        # Reminded cases not yet due to close are left out: they would fill every
        # batch ahead of the cases still to remind.
        ids = self.due(select(Case.id).where(
            Case.status == rules.hold_status, Case.is_closed.is_(False),
            Case.waiting_since <= now - close_after + remind,
            or_(Case.reminded_at.is_(None), Case.waiting_since <= now - close_after))
            .order_by(Case.waiting_since, Case.id), now)
        return self.each(ids, lambda session, case_id: self._act(session, case_id, now,
                                                                  close_after, remind),
                         now)

    def _act(self, session: Session, case_id: int, now: datetime, close_after: timedelta,
             remind: timedelta) -> str | None:
        rules = self.settings.cases
        case = session.scalar(select(Case).where(Case.id == case_id).with_for_update())
        # Looked at again under the lock: a reply or another sweep may have come first.
        if (case is None or case.is_closed or case.status != rules.hold_status
                or case.waiting_since is None):
            return None
        closes_at = case.waiting_since + close_after
        book = CaseBook(session, rules, now, self.targets, self.hooks)
        if now >= closes_at:
            log.info("case %s closed: no reply from the customer since %s",
                     case.display_number, case.waiting_since.isoformat())
            book.close(case, rules.auto_close_resolution, None)
            self.notifier.auto_closed(session, case, now)
            return "closed"
        if not remind or case.reminded_at is not None or now < closes_at - remind:
            return None
        if changed_rows(session, update(Case).where(Case.id == case.id,
                                                    Case.reminded_at.is_(None))
                        .values(reminded_at=now)
                        .execution_options(synchronize_session=False)) != 1:
            return None
        book.record(case, "reminded", None, closes_at=closes_at.isoformat())
        self.notifier.reminder(session, case, now,
                               closes_at=closes_at.strftime("%Y-%m-%d %H:%M UTC"))
        return "reminded"
