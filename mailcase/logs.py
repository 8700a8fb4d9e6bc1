"""How the daemon logs: text or JSON lines on stderr, message ids as fields, secrets masked.

systemd's journal takes stderr as it is; ``[logging] format = "json"`` writes one JSON
object a line for log shippers. A line about a mail passes ``extra=about(...)``: the
text shows ``inbound=… message_id=…`` in its message, and JSON gets them as fields
too, so a search for one mail finds every line of its life. Whatever reads a secret
(token secrets, relay and IMAP passwords, the database password) hands it to the
``Redactor``, which masks it in every line should one ever be formatted into a log.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import make_url

from mailcase.config import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FIELDS = ("inbound", "message_id", "outbound", "case")
MASK = "[redacted]"
# aiosmtpd logs every SMTP command, Alembic its context, APScheduler every job run.
# Libraries that log every step at INFO (flufl.bounce: 17 lines a bounce).
CHATTY = ("mail.log", "alembic", "apscheduler", "flufl.bounce")


def about(inbound: int | None = None, message_id: str | None = None, **more: Any) -> dict[str, Any]:
    """``extra=`` for a log line about one mail: its inbound id and Message-ID."""
    return {"inbound": inbound, "message_id": message_id, **more}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, the mail's
    ids when the line is about one, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class Redactor(logging.Filter):
    """Masks known secrets in the final text of every record that passes a handler."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set()
        self.add(*secrets)

    def add(self, *secrets: str) -> None:
        # Short strings would mask ordinary words; no real secret is that short.
        self.secrets.update(s for s in secrets if len(s) >= 6)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed call: the handler reports it as logging always does
        trace = logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
        if not any(secret in message or secret in trace for secret in self.secrets):
            return True
        for secret in self.secrets:
            message, trace = message.replace(secret, MASK), trace.replace(secret, MASK)
        # The masked text replaces the record's own; the traceback becomes part of it.
        record.msg = f"{message}\n{trace}" if trace else message
        record.args, record.exc_info, record.exc_text = None, None, None
        return True


def secrets_of(settings: Settings) -> list[str]:
    """The secrets the settings point at, as far as they can be read now."""
    found: list[str] = []
    password = make_url(settings.database.url).password
    if password:
        found.append(str(password))
    files = [settings.tokens.secret_file, settings.outbound.password_file]
    for box in settings.mailbox:
        if box.imap is not None:
            files += [box.imap.password_file, box.imap.token_file]
    for path in files:
        if path is None:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue  # whoever needs the file reports that it cannot be read
        found += [line.strip() for line in text.splitlines()
                  if line.strip() and not line.startswith("#")]
    return found


class _OwnHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure`` installs, so a second call replaces only it."""


def configure(settings: Settings, stream: Any = None) -> Redactor:
    """Point the root logger at stderr in the configured format and level, masking the
    configured secrets; returns the Redactor so later secrets can be added. Called
    again (a reload), it replaces its own handler and leaves others alone."""
    handler = _OwnHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.logging.format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    redactor = Redactor(secrets_of(settings))
    handler.addFilter(redactor)
    root = logging.getLogger()
    for old in list(root.handlers):
        if isinstance(old, _OwnHandler) or type(old) is logging.StreamHandler:
            root.removeHandler(old)  # ours, or basicConfig's from before the config was read
    root.addHandler(handler)
    root.setLevel(settings.logging.level)
    for chatty in CHATTY:
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return redactor
