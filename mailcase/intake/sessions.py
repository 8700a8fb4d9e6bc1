"""The listener's open sessions: connection limits, and draining for a stop.

``Sessions`` knows every open ``GatewaySMTP``: it refuses connections over
``smtp.max_connections`` in all or ``max_connections_per_client`` from one address with
421 (RFC 5321 3.8), and closes them all, saying 421 to those between mails, for a stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailcase.intake.smtpserver import GatewaySMTP

log = logging.getLogger(__name__)

SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"
TOO_MANY = "421 4.7.0 Too many connections, please try again later"
TOO_MANY_FROM_YOU = "421 4.7.0 Too many connections from your address, please try again later"


class Sessions:
    """The listener's open sessions, their limits, and whether it drains for a stop.

    While draining, a new connection is greeted with 421 and closed, and so is a session
    that starts another mail (MAIL FROM); a mail already under way finishes and gets its
    answer (RFC 5321 3.8: 421 when the service must shut down).
    """

    def __init__(self, max_total: int = 0, max_per_client: int = 0) -> None:
        self.max_total = max_total  # 0: no limit
        self.max_per_client = max_per_client
        self.open: set[GatewaySMTP] = set()
        self.clients: Counter[str] = Counter()
        self.draining = False

    def join(self, session: GatewaySMTP, peer: str) -> str | None:
        """Count a new connection from ``peer``; the 421 line to refuse it with, if it is
        one too many."""
        self.open.add(session)
        if self.draining:
            return SHUTTING_DOWN
        if self.max_total and len(self.open) > self.max_total:
            log.warning("refused a connection from %s: %d open (smtp.max_connections)",
                        peer, len(self.open) - 1)
            return TOO_MANY
        return None

    def identify(self, session: GatewaySMTP, client: str) -> str | None:
        """Count ``session`` for the address ``client`` (the peer, or the one a PROXY
        header names); the 421 line if that address already has its fill."""
        self.clients[client] += 1
        session.client = client
        if self.max_per_client and self.clients[client] > self.max_per_client:
            log.warning("refused a connection from %s: %d open from there "
                        "(smtp.max_connections_per_client)", client, self.clients[client] - 1)
            return TOO_MANY_FROM_YOU
        return None

    def leave(self, session: GatewaySMTP) -> None:
        if session in self.open:
            self.open.discard(session)
            if session.client is not None:
                self.clients[session.client] -= 1
                if self.clients[session.client] <= 0:
                    del self.clients[session.client]

    def busy(self) -> int:
        """How many sessions are in the middle of a mail (after MAIL FROM)."""
        return sum(1 for session in self.open if session.in_transaction)

    def close_all(self) -> None:
        """Close every session still open, saying 421 to those between mails (RFC 5321
        3.8); one cut off in the middle of a mail just closes."""
        for session in list(self.open):
            transport = session.transport
            if transport is not None:
                if not session.in_transaction and isinstance(transport, asyncio.WriteTransport):
                    transport.write(SHUTTING_DOWN.encode() + b"\r\n")
                transport.close()
