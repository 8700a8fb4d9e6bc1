"""The listener's protocol: aiosmtpd's SMTP (or LMTP) with our DATA reader and session limits.

One ``GatewaySMTP`` per connection, counted by ``sessions.Sessions`` (connection limits,
draining) and closed when it moves no mail on for ``session_timeout``. The handler's
replies (listener.IntakeHandler) are the protocol; this module only reads and frames.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, syntax

from mailcase.intake.sessions import SHUTTING_DOWN, Sessions
from mailcase.intake.smtpauth import OffLoopAuth

log = logging.getLogger(__name__)

TOO_BIG = "552 5.3.4 Message too big for this system"
NO_PROGRESS = "421 4.4.2 No mail in too long, closing"

READ_LIMIT = 64 * 1024
"""Octets of one data line the SMTP stream reader holds before handing over a piece."""


class GatewaySMTP(OffLoopAuth):
    """aiosmtpd's SMTP server with a DATA reader of its own that keeps one buffer per mail.

    aiosmtpd's ``smtp_DATA`` keeps every line as its own bytearray (320,000 objects for a
    24 MB base64 mail), joins them once to check each line's length and again for the
    result, and answers lines over RFC 5321's 1,000 octets with a permanent 500. Real
    mail breaks that limit (HTML generators write a whole page on one line), so a
    gateway takes such lines: the message size limit still bounds memory. Here a mail
    costs one growing buffer, then one bytes copy handed to the handler.

    The override relies on aiosmtpd 1.4's internals (``_reader``, ``_writer``,
    ``_call_handler_hook``, ``_set_post_data_state``, ``_proxy_timeout``). It never
    decodes the content: ``envelope.content`` is the same bytes as
    ``original_content`` (``decode_data`` stays False), and the deprecated
    ``process_message`` handler API is not called.
    """

    # SMTP.__init__ sizes its StreamReader with this. A data line longer than it arrives
    # in pieces (see _read_data), so one long line never sits whole in the reader too.
    line_length_limit = READ_LIMIT

    def __init__(self, handler: Any, *, sessions: Sessions, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sessions = sessions
        self.peer_address = "local"  # the connecting address (a balancer's, behind one)
        self.client: str | None = None  # the sender's address, as counted by sessions
        self._refusal: str | None = None
        self._joined = False
        self._encrypted = False
        # Idle means no mail progress, not no bytes: a client that keeps a connection
        # with NOOP (or RSET, or HELO) and sends no mail is closed after session_timeout.
        self._last_progress = 0.0
        self._progress_handle: asyncio.TimerHandle | None = None

    @property
    def in_transaction(self) -> bool:
        return self.envelope is not None and self.envelope.mail_from is not None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._joined:
            self._encrypted = True  # STARTTLS hands over the encrypted transport
            return
        self._joined = True
        self._progress()
        self._progress_handle = self.loop.call_later(self._timeout_duration,
                                                     self._check_progress)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.peer_address = str(peer[0])
        self._refusal = self.sessions.join(self, self.peer_address)
        if self._refusal is None and self._proxy_timeout is None:
            # Behind a load balancer the client is known only from the PROXY header
            # (IntakeHandler.handle_PROXY counts it then).
            self._refusal = self.sessions.identify(self, self.peer_address)

    def connection_lost(self, error: Exception | None) -> None:
        self.sessions.leave(self)
        if self._progress_handle is not None:
            self._progress_handle.cancel()
        super().connection_lost(error)

    def _progress(self) -> None:
        """The session moved a mail on: a MAIL, a RCPT taken, DATA arriving, a mail done."""
        self._last_progress = self.loop.time()

    def _check_progress(self) -> None:
        """Close a session that made no mail progress in session_timeout (checked when
        the time is up, rescheduled for what is left: progress itself costs no timer)."""
        left = self._last_progress + self._timeout_duration - self.loop.time()
        if left > 0:
            self._progress_handle = self.loop.call_later(left, self._check_progress)
            return
        transport = self.transport
        log.info("%s: no mail progress in %g s, closing", self.client or self.peer_address,
                 self._timeout_duration)
        tls_pending = self._original_transport is not None and not self._encrypted
        if (transport is not None and not tls_pending and not self.in_transaction
                and isinstance(transport, asyncio.WriteTransport)):
            transport.write(NO_PROGRESS.encode() + b"\r\n")
        self._timeout_cb()

    async def _handle_client(self) -> None:
        try:
            if self._refusal is not None:
                await self.refuse(self._refusal)
                return
            await super()._handle_client()
        finally:
            self.sessions.leave(self)  # however the session ended, it no longer counts

    def _timeout_cb(self) -> None:
        """A silent session is closed; one stuck in the TLS handshake too. aiosmtpd's own
        close would go to the TLS layer, which never connected, so neither the
        connection nor this session would end (nor leave the count)."""
        if self._original_transport is not None and not self._encrypted:
            log.info("%s: TLS handshake timed out", self.client or "?")
            self.sessions.leave(self)
            original = self._original_transport
            if isinstance(original, asyncio.Transport):
                original.abort()
            else:
                original.close()
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            return
        super()._timeout_cb()  # type: ignore[no-untyped-call]  # aiosmtpd leaves it unannotated

    @syntax("MAIL FROM: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_MAIL(self, arg: str | None) -> None:
        if self.sessions.draining:
            await self.refuse(SHUTTING_DOWN)
            return
        await super().smtp_MAIL(arg)
        if self.in_transaction:
            self._progress()

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        before = len(self.envelope.rcpt_tos) if self.envelope is not None else 0
        await super().smtp_RCPT(arg)
        if self.envelope is not None and len(self.envelope.rcpt_tos) > before:
            self._progress()

    async def refuse(self, reply: str) -> None:
        """A 421 line, then the connection closes (the sender tries again later)."""
        await self.push(reply)
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
        recipients = len(self.envelope.rcpt_tos)
        content = await self._read_data()
        if content is None:
            self._end_transaction()
            await self.answer_data(TOO_BIG, recipients)
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._end_transaction()
        await self.answer_data("250 OK" if status is MISSING else status, recipients)

    async def answer_data(self, reply: str, recipients: int) -> None:
        """SMTP answers a mail once."""
        await self.push(reply)

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
        tail = b"\r\n"  # the last two octets read: DATA's own CRLF before the first line
        while True:
            piece = await self._read_piece()
            self._progress()
            seen = tail + piece
            # The end: a line holding a lone dot, i.e. CRLF "." CRLF across what was read.
            done = seen.endswith(b"\r\n.\r\n")
            content = piece[:-3] if done else piece
            # RFC 5321 4.5.2: the first dot of every other line starting with one was
            # doubled by the sender; taken out here, where CRLF "." may straddle pieces
            # (the two octets of ``tail`` stay as they are: only a dot goes).
            content = (tail + content).replace(b"\r\n.", b"\r\n")[len(tail):]
            # RFC 1870: the size is the message's, without the doubled dots.
            received += len(content)
            if limit and received > limit:
                kept = None  # let go of what was read at once
            if kept is not None:
                kept += content
            if done:
                break
            tail = seen[-2:]
        return None if kept is None else bytes(kept)

    async def _read_piece(self) -> bytes:
        """The data up to and with the next "." CRLF (where the end may be), or the next
        at most READ_LIMIT octets when none comes sooner. A mail is read in a handful of
        pieces, not one await a line: a MIME bomb's eight million lines held its 250
        back for seconds."""
        try:
            # eof_received cancels this coroutine, so readuntil never raises
            # IncompleteReadError (as aiosmtpd's own smtp_DATA relies on).
            return await self._reader.readuntil(b".\r\n")
        except asyncio.LimitOverrunError as error:
            # A "." CRLF can only start at or after ``consumed``.
            return await self._reader.read(error.consumed)
        except asyncio.CancelledError:
            log.info("connection lost during DATA")
            self._writer.close()
            raise


class GatewayLMTP(GatewaySMTP):
    """LMTP (RFC 2033) for a mail server in front, such as Postfix's ``lmtp`` transport:
    LHLO instead of HELO/EHLO, and after DATA one reply per accepted recipient. The
    mail is stored once for all of them, so every recipient gets the same answer."""

    @syntax("LHLO hostname")
    async def smtp_LHLO(self, arg: str) -> None:
        await super().smtp_EHLO(arg)

    async def smtp_HELO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "HELO" not recognized (this is LMTP)')

    async def smtp_EHLO(self, arg: str) -> None:
        await self.push('500 5.5.1 Error: command "EHLO" not recognized (this is LMTP)')

    async def answer_data(self, reply: str, recipients: int) -> None:
        for _ in range(max(recipients, 1)):
            await self.push(reply)
