"""What every sweep of the case's clock shares: its parts, and acting on each due row in
a transaction of its own (one case's trouble never undoes another's action)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable

from sqlalchemy import Select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.targets import TargetRules
from mailcase.config import Settings
from mailcase.outbound.notify import Notifier

log = logging.getLogger(__name__)

BATCH = 200  # rows looked at per sweep; the next sweep takes the rest


class CaseSweep:
    """A sweep's parts; its ``sweep(now)`` finds due rows (``due``) and acts on each."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session],
                 notifier: Notifier, targets: TargetRules) -> None:
        self.settings = settings
        self.sessions = sessions
        self.notifier = notifier
        self.targets = targets

    def each(self, ids: Iterable[int],
             act: Callable[[Session, int], str | None]) -> Counter[str]:
        """Run ``act`` on each id in its own transaction; counts of what it returned. A
        row whose action fails is rolled back, logged and left for the next sweep: it
        never stops the others."""
        done: Counter[str] = Counter()
        for row_id in ids:
            try:
                with self.sessions.begin() as session:
                    kind = act(session, row_id)
            except Exception:
                log.exception("%s: acting on row %s failed; the next sweep tries again",
                              type(self).__name__, row_id)
                done["failed"] += 1
                continue
            if kind is not None:
                done[kind] += 1
        return done

    def due(self, query: Select[int]) -> list[int]:
        """The ids ``query`` finds, read before acting (the actions lock row by row)."""
        with self.sessions() as session:
            return list(session.scalars(query))
