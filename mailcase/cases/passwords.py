"""Agents' console passwords: set and cleared by ``mailcase agents set-password``, checked
when an agent signs in to the web console, with the same code for both.

Only an argon2id hash is kept (``agents.password_hash``): memory-hard, so a stolen copy
of the store is slow to guess from, with argon2-cffi's defaults (RFC 9106's second
recommended profile: 64 MiB, 3 passes, 4 lanes). A hash made with weaker parameters is
made again at the agent's next good sign-in.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from mailcase.cases.errors import CaseError
from mailcase.cases.staff import Staff
from mailcase.store.models import Agent

MIN_LENGTH = 12
MAX_LENGTH = 1024  # longer is no safer, and would only make the hash work longer


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()


@functools.cache
def _unknown_agent_hash() -> str:
    """A hash to check a password against when no agent has it: an unknown address
    then takes as long as a wrong password, so timing does not tell who is an agent."""
    return _hasher().hash("mailcase: nobody has this password")


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise CaseError(f"a password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise CaseError(f"a password may have at most {MAX_LENGTH} characters")


class Passwords:
    """Agents' console passwords, within one session and transaction."""

    def __init__(self, session: Session) -> None:
        self.staff = Staff(session)

    def set(self, email: str, password: str) -> Agent:
        """Give active agent ``email`` this password (replacing any before)."""
        check_strength(password)
        agent = self.staff.agent(email)
        if agent is None:
            raise CaseError(f"{email.strip().lower()} is not an active agent "
                            "(mailcase agents add EMAIL)")
        agent.password_hash = _hasher().hash(password)
        return agent

    def clear(self, email: str) -> Agent:
        """Take agent ``email``'s password away: no password sign-in from now on."""
        agent = self.staff.agent(email, active_only=False)
        if agent is None:
            raise CaseError(f"there is no agent {email.strip().lower()}")
        agent.password_hash = None
        return agent

    def check(self, email: str, password: str) -> Agent | None:
        """The active agent ``email`` if ``password`` is theirs, else None — in about
        the same time whether or not there is such an agent with a password."""
        agent = self.staff.agent(email) if "@" in email else None
        stored = agent.password_hash if agent is not None else None
        try:
            _hasher().verify(stored or _unknown_agent_hash(), password[:MAX_LENGTH + 1])
        except (VerificationError, InvalidHashError):
            return None
        if agent is None or stored is None or len(password) > MAX_LENGTH:
            return None
        if _hasher().check_needs_rehash(stored):
            agent.password_hash = _hasher().hash(password)
        return agent
