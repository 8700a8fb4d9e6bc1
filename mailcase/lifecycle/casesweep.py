"""What every sweep of the case's clock shares: its parts, and acting on each due row in
a transaction of its own (one case's trouble never undoes another's action)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.targets import TargetRules
from mailcase.config import Settings
from mailcase.outbound.notify import Notifier
from mailcase.outbound.webhooks import Webhooks

log = logging.getLogger(__name__)

BATCH = 200  # rows acted on per sweep; the next sweep takes the rest
RETRY_AFTER = timedelta(minutes=5)  # a row whose action failed waits this long


class CaseSweep:
    """A sweep's parts; its ``sweep(now)`` finds due rows (``due``) and acts on each."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 notifier: Notifier, targets: TargetRules, hooks: Webhooks) -> None:
        self.settings = settings
        self.sessions = sessions
        self.notifier = notifier
        self.targets = targets
        self.hooks = hooks
        # Rows whose action failed, and when to try them again: until then the query
        # looks past them, so a row that always fails never holds the others back.
        self.failed: dict[int, datetime] = {}

    def each(self, ids: Iterable[int], act: Callable[[Session, int], str | None],
             now: datetime) -> Counter[str]:
        """Run ``act`` on each id in its own transaction; counts of what it returned. A
        row whose action fails is rolled back, logged and tried again after
        RETRY_AFTER."""
        done: Counter[str] = Counter()
        for row_id in ids:
            try:
                with self.sessions.begin() as session:
                    kind = act(session, row_id)
            except Exception:
                log.exception("%s: acting on row %s failed; trying it again in %s",
                              type(self).__name__, row_id, RETRY_AFTER)
                self.failed[row_id] = now + RETRY_AFTER
                done["failed"] += 1
                continue
            self.failed.pop(row_id, None)
            if kind is not None:
                done[kind] += 1
        return done

    def due(self, query: Select[int], now: datetime) -> list[int]:
        """Up to BATCH ids ``query`` finds (in its order), past those waiting to be
        tried again; read before acting (the actions lock row by row)."""
        waiting = {row for row, when in self.failed.items() if when > now}
        with self.sessions() as session:
            ids = session.scalars(query.limit(BATCH + len(waiting)))
            return [row for row in ids if row not in waiting][:BATCH]
