"""The SMTP listener (aiosmtpd): refuse what is not ours at RCPT, say 250 only after the commit.

Replies follow RFC 5321 and RFC 3463: 550 5.1.1 for a recipient that is neither a
configured mailbox nor one of its plus-addresses (no open relay), 552 for mail over
``smtp.max_message_size`` (aiosmtpd enforces the SIZE limit during DATA), 451 4.3.0
for anything that kept the mail from being committed, so the sender retries.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailcase.config import Settings
from mailcase.intake import Accepted, TooLarge

log = logging.getLogger(__name__)

OK_RCPT = "250 2.1.5 Recipient OK"
NO_SUCH_USER = "550 5.1.1 No such mailbox here; this server does not relay"
TOO_BIG = "552 5.3.4 Message too big for this system"
TRY_LATER = "451 4.3.0 Temporary failure storing the message, please try again later"

AcceptFn = Callable[[bytes, str, Sequence[str]], Awaitable[Accepted]]


class IntakeHandler:
    """aiosmtpd handler: each hook returns the SMTP reply line itself."""

    def __init__(
        self, settings: Settings, accept: AcceptFn, on_accepted: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.accept = accept
        self.on_accepted = on_accepted

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.settings.mailbox_for(address) is None:
            log.info("refused RCPT %s from %s", address, session.peer)
            return NO_SUCH_USER
        envelope.rcpt_tos.append(address)
        return OK_RCPT

    async def handle_DATA(
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        try:
            accepted = await self.accept(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except TooLarge:
            return TOO_BIG
        except Exception:
            log.exception("could not store a message from %s (answered 451)", session.peer)
            return TRY_LATER
        self.on_accepted()
        return f"250 2.0.0 Queued as {accepted.id}"

    async def handle_exception(self, error: Exception) -> str:
        """Whatever else goes wrong in a session: a temporary failure, never aiosmtpd's 500."""
        log.error("SMTP session error: %s", error, exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP server, taking data lines longer than RFC 5321's 1,000 octets.

    Real mail breaks that limit (HTML generators write a whole page on one line), and
    aiosmtpd would answer such mail with a permanent 500. A gateway takes it: the
    message size limit still bounds memory.
    """

    def __init__(self, handler: IntakeHandler, *, line_length_limit: int, **kwargs: Any) -> None:
        self.line_length_limit = line_length_limit  # read by SMTP.__init__ for its reader
        super().__init__(handler, **kwargs)


def smtp_factory(settings: Settings, handler: IntakeHandler) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server``."""
    kwargs: dict[str, Any] = {
        "data_size_limit": settings.smtp.max_message_size,
        "line_length_limit": max(1001, settings.smtp.max_message_size),
        "enable_SMTPUTF8": True,
        "ident": "mailcase ESMTP",
        # Resolved once here: aiosmtpd would otherwise look up the host's FQDN (a DNS
        # query) for every connection.
        "hostname": settings.smtp.hostname or socket.getfqdn(),
    }
    return lambda: GatewaySMTP(handler, **kwargs)
