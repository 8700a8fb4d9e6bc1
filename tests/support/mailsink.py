"""A real aiosmtpd server standing in for the outbound smarthost, with error injection.

``sink.fail_next("451 4.3.0 try later")`` makes the next DATA (or RCPT) answer with that
line, so retry and failure paths are tested over a real SMTP conversation.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Received:
    """One mail as the sink got it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def __getitem__(self, header: str) -> str | None:
        value = self.message[header]
        return None if value is None else str(value)

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return body.get_content() if body is not None else ""


class _Handler:
    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves this to a handler that hooks EHLO
        with self.sink.lock:
            self.sink.connections += 1
        return responses

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        injected = self.sink._injected("RCPT")
        if injected:
            return injected
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        injected = self.sink._injected("DATA")
        if injected:
            return injected
        with self.sink.lock:
            self.sink.messages.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.original_content)
            )
        return "250 2.0.0 OK"


class Sink:
    """The smarthost of the tests: collects every mail it accepts.

    ``tls`` makes it offer and require STARTTLS, or speak implicit TLS, with a
    certificate from ``ca``; ``login`` makes it require AUTH with that user and password.
    """

    def __init__(self, *, tls: str = "none", ca: trustme.CA | None = None,
                 login: tuple[str, str] | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.messages: list[Received] = []
        self.logins: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self._failures: deque[tuple[str, str]] = deque()
        self._login = login
        options: dict[str, Any] = {"enable_SMTPUTF8": True}
        if tls != "none":
            assert ca is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            if tls == "implicit":
                options["ssl_context"] = context
            else:
                options.update(tls_context=context, require_starttls=True)
        if login is not None:
            # aiosmtpd only counts STARTTLS as TLS for auth_require_tls; an implicit-TLS
            # listener is encrypted from the first byte.
            options.update(authenticator=self._authenticate, auth_required=True,
                           auth_require_tls=tls != "implicit")
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      **options)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        given = (auth_data.login.decode(), auth_data.password.decode())
        if given != self._login:
            return AuthResult(success=False, handled=False)
        with self.lock:
            self.logins.append(given[0])
        return AuthResult(success=True)

    def __enter__(self) -> Sink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    def fail_next(self, reply: str, stage: str = "DATA", times: int = 1) -> None:
        """Answer the next ``times`` commands of ``stage`` (RCPT or DATA) with ``reply``."""
        with self.lock:
            self._failures.extend([(stage, reply)] * times)

    def _injected(self, stage: str) -> str | None:
        with self.lock:
            if self._failures and self._failures[0][0] == stage:
                return self._failures.popleft()[1]
        return None

    def expect(self, count: int, to: str | None = None,
               subject_starts: str | None = None) -> list[Received]:
        """Exactly ``count`` mails (to ``to``, with a subject starting ``subject_starts``,
        when given); says what arrived when not."""
        with self.lock:
            got = [m for m in self.messages if (to is None or to in m.rcpt_tos) and (
                subject_starts is None or (m["Subject"] or "").startswith(subject_starts))]
        if len(got) != count:
            seen = "\n".join(f"  {m.rcpt_tos} {m['Subject']!r}" for m in self.messages) or "  none"
            raise AssertionError(f"expected {count} mail(s){f' to {to}' if to else ''}, "
                                 f"got {len(got)}; the sink holds:\n{seen}")
        return got
