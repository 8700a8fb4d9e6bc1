"""API keys: which program acts on the HTTP API, and what it may do there.

A key reads ``mck_<id>_<secret>``. Only the secret's SHA-256 is stored (the secret is
32 random bytes, so a fast hash is as good as a slow one: there is nothing to guess),
looked up by the id and compared in constant time. A key is shown once, when made; a
revoked key stops working at once. Scopes nest: ``read`` reads, ``write`` also changes
cases, ``admin`` also manages what only operators should.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailcase.cases.errors import BadValue, CaseError
from mailcase.store.models import ApiKey

SCOPES = ("read", "write", "admin")
_KEY = re.compile(r"^mck_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# When a key was last used is written at most this often: not a write per request.
USE_RESOLUTION = timedelta(minutes=1)


def allows(granted: str, needed: str) -> bool:
    """Whether a key of scope ``granted`` may do what needs ``needed``."""
    return SCOPES.index(granted) >= SCOPES.index(needed)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A key just made: its text is shown this once and never again."""

    name: str
    scope: str
    text: str


class ApiKeys:
    """API keys in one session: made, listed, revoked, and checked on each request."""

    def __init__(self, session: Session, now: datetime) -> None:
        self.session = session
        self.now = now

    def create(self, name: str, scope: str) -> NewKey:
        name = name.strip()
        if not name:
            raise BadValue("an API key needs a name (who or what uses it)")
        if scope not in SCOPES:
            raise BadValue(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
        if self._active(name) is not None:
            raise CaseError(f"there is already a key called {name!r}; revoke it first")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self.session.add(ApiKey(name=name, key_id=key_id, secret_sha256=_digest(secret),
                                scope=scope, created_at=self.now))
        self.session.flush()
        return NewKey(name, scope, f"mck_{key_id}_{secret}")

    def all(self) -> list[ApiKey]:
        return list(self.session.scalars(select(ApiKey).order_by(ApiKey.id)))

    def revoke(self, name: str) -> ApiKey:
        key = self._active(name.strip())
        if key is None:
            raise CaseError(f"there is no key called {name.strip()!r} that is in use")
        key.revoked_at = self.now
        return key

    def verify(self, text: str) -> ApiKey | None:
        """The key ``text`` is, if it is one in use; its last use is noted."""
        match = _KEY.match(text.strip())
        if match is None:
            return None
        key = self.session.scalar(select(ApiKey).where(ApiKey.key_id == match.group(1)))
        if key is None or key.revoked_at is not None:
            return None
        if not hmac.compare_digest(key.secret_sha256, _digest(match.group(2))):
            return None
        if key.last_used_at is None or self.now - key.last_used_at >= USE_RESOLUTION:
            key.last_used_at = self.now
        return key

    def _active(self, name: str) -> ApiKey | None:
        return self.session.scalar(select(ApiKey).where(ApiKey.name == name,
                                                        ApiKey.revoked_at.is_(None)))
