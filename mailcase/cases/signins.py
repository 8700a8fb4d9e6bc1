"""The web console's sessions: one opened at each sign-in, found again by the secret its
cookie holds, ended by logout, by idleness (``[console] session_idle``), by age
(``session_max``) or at once by the agent's deactivation.

The cookie holds a 32-byte random secret; the store only its SHA-256, so neither a copy
of the store nor a database reader can sign anyone in. Each session also has a random
CSRF token its forms carry. Ended sessions' rows are deleted when they are next looked
for, and all of them at each sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session, joinedload

from mailcase.config.console import ConsoleSettings
from mailcase.store.models import Agent, ConsoleSession

# How stale last_seen_at may grow before a request writes it again: a page view need
# not be a write, and idleness is measured in hours.
TOUCH_SECONDS = 60


@dataclass(frozen=True)
class SignedIn:
    """A live session: who, and the token its forms carry."""

    agent_id: int
    email: str
    name: str
    csrf: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Signins:
    """The console's sessions, within one session and transaction, at ``now``."""

    def __init__(self, session: Session, now: datetime, settings: ConsoleSettings) -> None:
        self.session = session
        self.now = now
        self.idle = timedelta(seconds=settings.session_idle.wall_seconds)
        self.longest = timedelta(seconds=settings.session_max.wall_seconds)

    def open(self, agent: Agent) -> tuple[str, SignedIn]:
        """A new session for ``agent``: the secret for its cookie, and the session."""
        self.sweep()
        secret = secrets.token_urlsafe(32)
        row = ConsoleSession(token_hash=_digest(secret), agent_id=agent.id,
                             csrf=secrets.token_urlsafe(32), created_at=self.now,
                             last_seen_at=self.now, expires_at=self.now + self.longest)
        self.session.add(row)
        self.session.flush()
        return secret, SignedIn(agent.id, agent.email, agent.name, row.csrf)

    def find(self, secret: str) -> SignedIn | None:
        """The live session whose cookie holds ``secret``, its use noted; None when
        there is none, it has ended, or its agent is no longer active."""
        row = self.session.scalar(
            select(ConsoleSession).where(ConsoleSession.token_hash == _digest(secret))
            .options(joinedload(ConsoleSession.agent)))
        if row is None:
            return None
        if (not row.agent.active or self.now >= row.expires_at
                or self.now - row.last_seen_at >= self.idle):
            self.session.delete(row)
            return None
        if (self.now - row.last_seen_at).total_seconds() >= TOUCH_SECONDS:
            row.last_seen_at = self.now
        return SignedIn(row.agent.id, row.agent.email, row.agent.name, row.csrf)

    def close(self, secret: str) -> None:
        """End the session whose cookie holds ``secret`` (logout)."""
        self.session.execute(delete(ConsoleSession).where(
            ConsoleSession.token_hash == _digest(secret)))

    def sweep(self) -> int:
        """Delete every ended session's row; how many."""
        inactive = select(Agent.id).where(Agent.active.is_(False))
        ended = self.session.execute(delete(ConsoleSession).where(or_(
            ConsoleSession.expires_at <= self.now,
            ConsoleSession.last_seen_at <= self.now - self.idle,
            ConsoleSession.agent_id.in_(inactive))))
        return int(getattr(ended, "rowcount", 0) or 0)
