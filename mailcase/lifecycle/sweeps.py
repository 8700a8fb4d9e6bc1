"""The scheduler's sweeps over the case's clock: escalation, then reminders and
auto-close, run by ``serve`` every ``cases.sweep_seconds`` and by ``process`` once.

On PostgreSQL with several instances, one sweeps at a time (an advisory lock; the
others skip that run); each action is claimed by a conditional UPDATE as well, so a
sweep run twice still acts once. A sweep acts on everything due by now, so the first
one after downtime catches up once rather than once per missed run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mailcase.cases.targets import TargetRules
from mailcase.config import Settings
from mailcase.lifecycle.escalation import Escalation
from mailcase.lifecycle.holds import Holds
from mailcase.outbound.notify import Notifier
from mailcase.outbound.webhooks import Webhooks
from mailcase.store.db import one_instance

log = logging.getLogger(__name__)

LOCK_KEY = "mailcase sweeps"


class Sweeps:
    """Runs every sweep once, on one instance at a time."""

    def __init__(self, settings: Settings, engine: Engine, sessions: sessionmaker[Session],
                 *, notifier: Notifier, targets: TargetRules, hooks: Webhooks,
                 clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock
        self.escalation = Escalation(settings, sessions, notifier, targets, hooks)
        self.holds = Holds(settings, sessions, notifier, targets, hooks)

    def run(self) -> Counter[str]:
        """Act on what is due now; counts of what was done (empty when another instance
        holds the sweep)."""
        with one_instance(self.engine, LOCK_KEY) as mine:
            if not mine:
                return Counter()
            now = self.clock()
            done = self.escalation.sweep(now) + self.holds.sweep(now)
        if done:
            log.info("sweep: %s", ", ".join(f"{n} {kind}" for kind, n in sorted(done.items())))
        return done
