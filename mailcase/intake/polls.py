"""The record of IMAP polling: each mailbox's last good pass, its failures, its quarantine.

The poller writes here after every pass so that health checks and ``mailcase
mailboxes`` can tell a quiet mailbox from a stalled poller, and reads here which parked
mail still has to be copied to the mailbox's quarantine folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.store.models import InboundMail, MailboxPoll

ERROR_MAX = 2000


@dataclass(frozen=True)
class ParkedMail:
    """A parked mail from a polled mailbox, as the quarantine folder will get it."""

    id: int
    raw: bytes
    received_at: datetime


class PollRecord:
    """Reads and writes ``mailbox_polls`` and the quarantine marks of parked mail."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def succeeded(self, address: str) -> None:
        """A pass over ``address`` worked: the failure streak ends."""
        with self.sessions.begin() as session:
            row = self._row(session, address)
            row.last_success_at = self.clock()
            row.failures = 0

    def failed(self, address: str, error: str) -> int:
        """A pass over ``address`` failed; returns the failures in a row."""
        with self.sessions.begin() as session:
            row = self._row(session, address)
            row.last_failure_at = self.clock()
            row.failures += 1
            row.last_error = error[:ERROR_MAX]
            return row.failures

    def all(self) -> list[MailboxPoll]:
        """Every mailbox polled so far, by address."""
        with self.sessions() as session:
            rows = session.scalars(select(MailboxPoll).order_by(MailboxPoll.address)).all()
            session.expunge_all()
            return list(rows)

    def to_quarantine(self, address: str) -> list[ParkedMail]:
        """Parked mail polled from ``address`` that is not in its quarantine folder yet."""
        with self.sessions() as session:
            candidates = session.execute(
                select(InboundMail.id, InboundMail.rcpt_to)
                .where(InboundMail.status == "parked", InboundMail.source == "imap",
                       InboundMail.quarantined_at.is_(None))
                .order_by(InboundMail.id)
            ).all()
            ids = [row.id for row in candidates if address in row.rcpt_to]
            if not ids:
                return []
            rows = session.execute(
                select(InboundMail.id, InboundMail.raw, InboundMail.received_at)
                .where(InboundMail.id.in_(ids)).order_by(InboundMail.id)
            ).all()
        return [ParkedMail(row.id, row.raw, row.received_at) for row in rows]

    def quarantined(self, inbound_id: int) -> None:
        """The mail's copy is in the quarantine folder: never copy it again."""
        with self.sessions.begin() as session:
            row = session.get(InboundMail, inbound_id)
            if row is not None:
                row.quarantined_at = self.clock()

    @staticmethod
    def _row(session: Session, address: str) -> MailboxPoll:
        row = session.get(MailboxPoll, address, with_for_update=True)
        if row is None:
            row = MailboxPoll(address=address, failures=0)
            session.add(row)
        return row
