"""Webhooks as operators configure them: where each case event is POSTed, signed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from mailcase.config.base import Section

# What a webhook can be told of; each is a kind of entry in a case's history.
WEBHOOK_EVENTS = (
    "case.created", "case.updated", "case.closed", "case.reopened", "case.escalated",
    "case.merged", "comment.added", "collaborator.added", "collaborator.removed",
)
Seconds = Annotated[float, Field(gt=0)]


class WebhookSettings(Section):
    """One receiver of case events: POSTed as JSON, signed after the Standard Webhooks
    scheme (webhook-id, webhook-timestamp, webhook-signature), retried with backoff."""

    name: str
    url: str
    events: tuple[str, ...] = ()  # empty: every event
    # The signing secret, "whsec_" and base64 (Standard Webhooks); made on the first
    # start when the file is missing. Relative to the config file.
    secret_file: Path
    timeout: Seconds = 10.0
    retry_base_seconds: Seconds = 30.0
    retry_max_seconds: Seconds = 3600.0
    deadline_hours: Seconds = 24.0  # undelivered this long after the event: failed

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("events")
    @classmethod
    def _known_events(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        for value in values:
            if value not in WEBHOOK_EVENTS:
                raise ValueError(f"{value!r} is not an event; known: {', '.join(WEBHOOK_EVENTS)}")
        return values

    def wants(self, event: str) -> bool:
        return not self.events or event in self.events
