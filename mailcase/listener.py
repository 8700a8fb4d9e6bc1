"""The SMTP listener (aiosmtpd): refuse what is not ours at RCPT, say 250 only after the commit.

Replies follow RFC 5321 and RFC 3463: 550 5.1.1 for a recipient that is neither a
configured mailbox nor one of its plus-addresses (no open relay), 552 for mail over
``smtp.max_message_size`` (enforced while DATA is read, see GatewaySMTP), 451 4.3.0
for anything that kept the mail from being committed, so the sender retries.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from mailcase.config import Settings
from mailcase.intake import Accepted, TooLarge

log = logging.getLogger(__name__)

OK_RCPT = "250 2.1.5 Recipient OK"
NO_SUCH_USER = "550 5.1.1 No such mailbox here; this server does not relay"
TOO_BIG = "552 5.3.4 Message too big for this system"
TRY_LATER = "451 4.3.0 Temporary failure storing the message, please try again later"

SHUTTING_DOWN = "421 4.3.2 Service shutting down, please try again later"

READ_LIMIT = 64 * 1024
"""Octets of one data line the SMTP stream reader holds before handing over a piece."""

AcceptFn = Callable[[bytes, str, Sequence[str]], Awaitable[Accepted]]


class IntakeHandler:
    """aiosmtpd handler: each hook returns the SMTP reply line itself."""

    def __init__(
        self, settings: Settings, accept: AcceptFn, on_accepted: Callable[[], None],
        observe: Callable[[float], None] = lambda _seconds: None,
    ) -> None:
        self.settings = settings
        self.accept = accept
        self.on_accepted = on_accepted
        self.observe = observe  # seconds from the end of DATA to the commit

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
        started = time.monotonic()
        try:
            accepted = await self.accept(raw, envelope.mail_from or "", list(envelope.rcpt_tos))
        except TooLarge:
            return TOO_BIG
        except Exception:
            log.exception("could not store a message from %s (answered 451)", session.peer)
            return TRY_LATER
        self.observe(time.monotonic() - started)
        self.on_accepted()
        return f"250 2.0.0 Queued as {accepted.id}"

    async def handle_exception(self, error: Exception) -> str:
        """Whatever else goes wrong in a session: a temporary failure, never aiosmtpd's 500."""
        log.error("SMTP session error: %s", error, exc_info=error)
        return "451 4.3.0 Temporary failure, please try again later"


class Sessions:
    """The listener's open SMTP sessions, and whether it is draining for a stop.

    While draining, a new connection is greeted with 421 and closed, and so is a session
    that starts another mail (MAIL FROM); a mail already under way finishes and gets its
    answer (RFC 5321 3.8: 421 when the service must shut down).
    """

    def __init__(self) -> None:
        self.open: set[GatewaySMTP] = set()
        self.draining = False

    def busy(self) -> int:
        """How many sessions are in the middle of a mail (after MAIL FROM)."""
        return sum(1 for session in self.open if session.in_transaction)

    def close_all(self) -> int:
        """Close every session still open; returns how many there were."""
        count = len(self.open)
        for session in list(self.open):
            if session.transport is not None:
                session.transport.close()
        return count


class GatewaySMTP(SMTP):
    """aiosmtpd's SMTP server with a DATA reader of its own that keeps one buffer per mail.

    aiosmtpd's ``smtp_DATA`` keeps every line as its own bytearray (320,000 objects for a
    24 MB base64 mail), joins them once to check each line's length and again for the
    result, and answers lines over RFC 5321's 1,000 octets with a permanent 500. Real
    mail breaks that limit (HTML generators write a whole page on one line), so a
    gateway takes such lines: the message size limit still bounds memory. Here a mail
    costs one growing buffer, then one bytes copy handed to the handler.

    The override relies on aiosmtpd 1.4's internals (``_reader``, ``_writer``,
    ``_call_handler_hook``, ``_set_post_data_state``). It never decodes the content:
    ``envelope.content`` is the same bytes as ``original_content`` (``decode_data``
    stays False), and the deprecated ``process_message`` handler API is not called.
    """

    # SMTP.__init__ sizes its StreamReader with this. A data line longer than it arrives
    # in pieces (see _read_data), so one long line never sits whole in the reader too.
    line_length_limit = READ_LIMIT

    def __init__(self, handler: IntakeHandler, *, sessions: Sessions, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions

    @property
    def in_transaction(self) -> bool:
        return self.envelope is not None and self.envelope.mail_from is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sessions.open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.open.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if self.sessions.draining:
            await self._refuse()
            return
        await super()._handle_client()

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.sessions.draining:
            await self._refuse()
            return
        await super().smtp_MAIL(arg)

    async def _refuse(self) -> None:
        """421 and close: the daemon is stopping (the sender tries again later)."""
        await self.push(SHUTTING_DOWN)
        if self.transport is not None:
            self.transport.close()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """DATA as aiosmtpd answers it, with the mail read by ``_read_data``."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content = await self._read_data()
        if content is None:
            self._end_transaction()
            await self.push(TOO_BIG)
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._end_transaction()
        await self.push("250 OK" if status is MISSING else status)

    def _end_transaction(self) -> None:
        """A fresh envelope for the next mail, as after aiosmtpd's own DATA."""
        self._set_post_data_state()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it unannotated

    async def _read_data(self) -> bytes | None:
        """The mail up to the line holding a lone dot, dot-stuffing undone; None when it is
        over ``data_size_limit``.

        Lines end at CRLF only (RFC 5321 2.3.8): a bare LF is content, as in aiosmtpd, so a
        dot after one is neither unstuffed nor, alone before CRLF, the end. A mail over
        the limit is still read to its end before the 552 (RFC 5321 4.2.5), but nothing of
        it is kept.
        """
        limit = self.data_size_limit
        kept: bytearray | None = bytearray()
        received = 0
        line_start = True
        while True:
            piece = await self._read_piece()
            if line_start and piece == b".\r\n":
                break
            received += len(piece)
            if limit and received > limit:
                kept = None  # let go of what was read at once
            if kept is not None and line_start and piece.startswith(b"."):
                kept += memoryview(piece)[1:]  # RFC 5321 4.5.2: the sender doubled it
            elif kept is not None:
                kept += piece
            line_start = piece.endswith(b"\r\n")
        return None if kept is None else bytes(kept)

    async def _read_piece(self) -> bytes:
        """The next data line with its CRLF, or the next at most READ_LIMIT octets of a
        longer one."""
        try:
            # eof_received cancels this coroutine, so readuntil never raises
            # IncompleteReadError (as aiosmtpd's own smtp_DATA relies on).
            return await self._reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as error:
            # A CRLF can only start at or after ``consumed``: the line goes on.
            return await self._reader.read(error.consumed)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise


def smtp_factory(
    settings: Settings, handler: IntakeHandler, sessions: Sessions
) -> Callable[[], SMTP]:
    """A protocol factory for ``loop.create_server``; every session joins ``sessions``."""
    kwargs: dict[str, Any] = {
        "data_size_limit": settings.smtp.max_message_size,
        "enable_SMTPUTF8": True,
        "ident": "mailcase ESMTP",
        # Resolved once here: aiosmtpd would otherwise look up the host's FQDN (a DNS
        # query) for every connection.
        "hostname": settings.smtp.hostname or socket.getfqdn(),
    }
    return lambda: GatewaySMTP(handler, sessions=sessions, **kwargs)
