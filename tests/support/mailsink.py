"""A real aiosmtpd server standing in for the outbound smarthost, with error injection.

``sink.fail_next("451 4.3.0 try later")`` makes the next DATA (or RCPT) answer with that
line, so retry and failure paths are tested over a real SMTP conversation.
"""

from __future__ import annotations

import socket
import threading
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


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
    """The smarthost of the tests: collects every mail it accepts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[Received] = []
        self.lock = threading.Lock()
        self._failures: deque[tuple[str, str]] = deque()
        self._controller = Controller(
            _Handler(self), hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True
        )

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

    def expect(self, count: int, to: str | None = None) -> list[Received]:
        """Exactly ``count`` mails (to ``to``, when given); says what arrived when not."""
        with self.lock:
            got = [m for m in self.messages if to is None or to in m.rcpt_tos]
        if len(got) != count:
            seen = "\n".join(f"  {m.rcpt_tos} {m['Subject']!r}" for m in self.messages) or "  none"
            raise AssertionError(f"expected {count} mail(s){f' to {to}' if to else ''}, "
                                 f"got {len(got)}; the sink holds:\n{seen}")
        return got
