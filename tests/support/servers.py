"""Helpers that start real servers for the tests and say clearly when one is missing."""

from __future__ import annotations

import asyncio
import datetime
import os
import smtplib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailcase.app import App
from mailcase.service.daemon import Daemon
from tests.support.polling import wait_for  # noqa: F401 - re-exported: tests import it here

REQUIRE_SERVERS = os.environ.get("MAILCASE_TEST_REQUIRE_SERVERS", "") not in ("", "0")


def require(condition: bool, reason: str) -> None:
    """Skip (locally) or fail (on CI) a test whose server is missing."""
    if condition:
        return
    if REQUIRE_SERVERS:
        pytest.fail(f"required server missing: {reason}")
    pytest.skip(reason)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):  # an inline table
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, datetime.date):  # a TOML date
        return value.isoformat()
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(
    folder: Path, database_url: str, sink_port: int | None,
    **sections: dict[str, Any] | list[dict[str, Any]],
) -> Path:
    """A complete config file for a test, overridable section by section."""
    base: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "smtp": {"host": "127.0.0.1", "port": 0},
        "outbound": (
            {"transport": "smtp", "host": "127.0.0.1", "port": sink_port, "timeout": 5}
            if sink_port else {"transport": "maildir", "maildir": "outbound"}
        ),
        "tokens": {"secret_file": "token-secret"},
        "processing": {"retry_base_seconds": 0.001, "retry_max_seconds": 0.001},
    }
    mailboxes: Any = sections.pop("mailbox", None) or {"address": "support@example.com",
                                                         "name": "Support"}
    tables = {name: values for name, values in sections.items() if isinstance(values, list)}
    for name, values in sections.items():
        if name not in tables:
            base[name] = {**base.get(name, {}), **values}
    lines = []
    for name, values in base.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    for name, entries in tables.items():  # arrays of tables: [[assignment_rule]]
        for entry in entries:
            lines.append(f"[[{name}]]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in entry.items()]
    for mailbox in mailboxes if isinstance(mailboxes, list) else [mailboxes]:
        lines += _mailbox_lines(mailbox)
    path = folder / "mailcase.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _mailbox_lines(mailbox: dict[str, Any]) -> list[str]:
    """One ``[[mailbox]]`` with its sub-tables (``imap``) and arrays of tables (rules)."""
    lines = ["[[mailbox]]"]
    tables = {k: v for k, v in mailbox.items() if isinstance(v, list) and v
              and isinstance(v[0], dict)}
    subtables = {k: v for k, v in mailbox.items() if isinstance(v, dict)}
    lines += [f"{key} = {_toml_value(value)}" for key, value in mailbox.items()
              if key not in tables and key not in subtables]
    for key, entry in subtables.items():
        lines.append(f"[mailbox.{key}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    for key, entries in tables.items():
        for entry in entries:
            lines.append(f"[[mailbox.{key}]]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
    return lines


@contextmanager
def running_daemon(app: App, *, workers: bool = False) -> Iterator[Daemon]:
    """The real daemon on its own event loop in a thread; listener on a free port."""
    daemon = Daemon(app, workers=workers)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    errors: list[BaseException] = []

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            await daemon.start()
        except BaseException as exc:
            errors.append(exc)
            started.set()
            raise
        started.set()
        await stop.wait()
        await daemon.stop()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    if errors:
        raise errors[0]
    try:
        yield daemon
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def send(port: int, message: EmailMessage, *, rcpt: list[str] | None = None,
         mail_from: str | None = None) -> dict[str, tuple[int, bytes]]:
    """Send ``message`` to our listener with smtplib, as any mail client would."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        return client.send_message(message, from_addr=mail_from, to_addrs=rcpt)


def mail(
    *, sender: str = "Ann Customer <ann@customer.org>", to: str = "support@example.com",
    subject: str = "Printer on fire", body: str = "My printer is on fire.\n",
    message_id: str | None = None, **headers: str,
) -> EmailMessage:
    """A plain customer mail; extra headers by keyword (underscores become dashes)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


