"""Webhooks: case events POSTed to other programs, signed, retried, never lost.

An entry in a case's history that a ``[[webhook]]`` asks for becomes a delivery row in
the same transaction (``Webhooks.queue``, called by the case rules), so a crash can
neither lose an event nor invent one. The sender claims due rows, POSTs each body
as it was written, and records the answer: 2xx is delivered; anything else is tried
again with exponential backoff until the webhook's deadline, then failed (visible and
retryable with ``mailcase webhooks``). Every request is signed after the Standard
Webhooks scheme: ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` =
``v1,`` base64 HMAC-SHA256 over ``id.timestamp.body`` with the webhook's secret. A
receiver sees an event at least once; ``webhook-id`` tells it a repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from mailcase.config import Settings
from mailcase.config.webhooks import WebhookSettings
from mailcase.store.models import Case, WebhookDelivery

log = logging.getLogger(__name__)

# The case history's entries that webhooks are told of, by the event type they send.
EVENT_TYPES = {
    "created": "case.created", "comment": "comment.added", "status": "case.updated",
    "priority": "case.updated", "owner": "case.updated", "parent": "case.updated",
    "closed": "case.closed", "reopened": "case.reopened",
    "target breached": "case.escalated", "merged": "case.merged",
    "collaborator added": "collaborator.added",
    "collaborator removed": "collaborator.removed",
}
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
BATCH = 50


class WebhookSecretError(Exception):
    """A webhook's secret file cannot be read or holds no usable secret."""


def load_secret(path: Path, *, create: bool) -> bytes:
    """The signing key in ``path`` ("whsec_" and base64); made when missing and asked."""
    if not path.exists() and create:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            made = base64.b64encode(secrets.token_bytes(32)).decode()
            handle.write(f"{SECRET_PREFIX}{made}\n")
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise WebhookSecretError(f"webhook secret file {path} cannot be read: "
                                 f"{exc.strerror}") from None
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise WebhookSecretError(f"webhook secret file {path}: not a secret like "
                                 f"{SECRET_PREFIX}<base64 of 32 random bytes>")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header for one request (Standard Webhooks, v1)."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class Webhooks:
    """The configured webhooks: which events each wants (queueing needs no secret)."""

    hooks: tuple[WebhookSettings, ...] = ()

    @classmethod
    def of(cls, settings: Settings) -> Webhooks:
        return cls(settings.webhook)

    def queue(self, session: Session, case: Case, kind: str, *, actor: str | None,
              detail: Mapping[str, Any], now: datetime) -> None:
        """Queue the history entry ``kind`` for every webhook that wants it."""
        event = EVENT_TYPES.get(kind)
        if event is None or not self.hooks:
            return
        for hook in self.hooks:
            if hook.wants(event):
                message_id = f"msg_{uuid.uuid4().hex}"
                body = json.dumps({
                    "type": event, "timestamp": now.isoformat(),
                    "data": {"case": _case(case), "kind": kind, "actor": actor,
                             "detail": dict(detail)},
                }, sort_keys=True, default=str)
                session.add(WebhookDelivery(
                    webhook=hook.name, message_id=message_id, event_type=event,
                    case_id=case.id, body=body, status="pending", attempts=0,
                    next_attempt_at=now, created_at=now,
                    deadline_at=now + timedelta(hours=hook.deadline_hours)))


def _case(case: Case) -> dict[str, Any]:
    """The case as an event names it (GET /api/v1/cases/{number} has the rest)."""
    return {"number": case.display_number, "subject": case.subject, "status": case.status,
            "priority": case.priority, "is_closed": case.is_closed,
            "is_escalated": case.is_escalated}


class WebhookSender:
    """Delivers due webhook rows; several instances share the work (rows are leased)."""

    def __init__(self, sessions: sessionmaker[Session], webhooks: Webhooks,
                 clock: Callable[[], datetime],
                 client: Callable[[], httpx.Client] = httpx.Client) -> None:
        self.sessions = sessions
        self.webhooks = webhooks
        self.clock = clock
        self.client = client
        self._keys: dict[str, bytes] = {}

    def key(self, hook: WebhookSettings) -> bytes:
        """The hook's signing key, read once; a missing file is made (mode 0600) by the
        sender, which runs as the service's user, for the receiver's operator to copy."""
        if hook.name not in self._keys:
            self._keys[hook.name] = load_secret(hook.secret_file, create=True)
        return self._keys[hook.name]

    def drain(self, stop: Callable[[], bool] = lambda: False) -> Counter[str]:
        """Deliver until nothing is due (or ``stop()``); counts sent, retried, failed."""
        outcomes: Counter[str] = Counter()
        if not self.webhooks.hooks:
            return outcomes
        with self.client() as client:
            while not stop() and (batch := self._claim()):
                for row_id, hook, message_id, body in batch:
                    outcomes[self._deliver(client, row_id, hook, message_id, body)] += 1
        return outcomes

    def _claim(self) -> list[tuple[int, WebhookSettings, str, str]]:
        """Up to BATCH due rows, leased to this sender for a while."""
        now = self.clock()
        hooks = {hook.name: hook for hook in self.webhooks.hooks}
        with self.sessions.begin() as session:
            rows = session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.status == "pending",
                                              WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(BATCH).with_for_update(skip_locked=True)).all()
            claimed = []
            for row in rows:
                hook = hooks.get(row.webhook)
                if hook is None:  # the webhook left the config: nobody to send it to
                    row.status, row.last_error = "failed", "no such webhook configured"
                    continue
                row.next_attempt_at = now + timedelta(seconds=hook.timeout * 2 + 30)
                claimed.append((row.id, hook, row.message_id, row.body))
            return claimed

    def _deliver(self, client: httpx.Client, row_id: int, hook: WebhookSettings,
                 message_id: str, body: str) -> str:
        now = self.clock()
        stamp = int(now.timestamp())
        headers = {"content-type": "application/json", "webhook-id": message_id,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": signature(self.key(hook), message_id, stamp, body)}
        error = None
        try:
            answer = client.post(hook.url, content=body.encode(), headers=headers,
                                 timeout=hook.timeout)
            if not answer.is_success:
                error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        return self._record(row_id, hook, error)

    def _record(self, row_id: int, hook: WebhookSettings, error: str | None) -> str:
        now = self.clock()
        with self.sessions.begin() as session:
            row = session.get(WebhookDelivery, row_id)
            if row is None:
                return "gone"
            row.attempts += 1
            if error is None:
                row.status, row.sent_at, row.last_error = "sent", now, None
                return "sent"
            row.last_error = error
            delay = min(hook.retry_base_seconds * 2 ** (row.attempts - 1),
                        hook.retry_max_seconds)
            if now + timedelta(seconds=delay) > row.deadline_at:
                row.status = "failed"
                log.warning("webhook %s: %s failed for good after %d tries: %s", hook.name,
                            row.message_id, row.attempts, error)
                return "failed"
            row.next_attempt_at = now + timedelta(seconds=delay)
            log.info("webhook %s: %s not delivered (%s); trying again in %.0f s",
                     hook.name, row.message_id, error, delay)
            return "retried"
