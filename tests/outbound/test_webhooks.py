"""Webhooks over real HTTP: each case event reaches a receiver that fails twice before
it answers, exactly once, with a valid Standard Webhooks signature; nothing is sent
for a change that rolled back; a receiver that never answers ends failed, listed and
retryable from the command line. Time is the app's injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from mailcase.app import App
from mailcase.cases.desk import NewCase
from mailcase.cases.errors import CaseError
from mailcase.cli import main
from mailcase.store.models import WebhookDelivery
from tests.support.servers import mail

CARL = "carl@customer.org"


class Receiver:
    """A real HTTP server that answers 500 to the first ``failures`` requests."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                          body))
                failing = len(receiver.requests) <= receiver.failures
                self.send_response(500 if failing else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    yield server
    server.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def verified(secret_file: Path, headers: dict[str, str], body: bytes) -> bool:
    """The Standard Webhooks check a receiver makes, written from the scheme itself."""
    key = base64.b64decode(secret_file.read_text().strip().removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(f"v1,{expected}", part)
               for part in headers["webhook-signature"].split())


def hooked(make_app: Callable[..., App], url: str, clock: Clock, **hook: Any) -> App:
    return make_app(clock=clock, webhook=[{"name": "crm", "url": url,
                                           "secret_file": "crm.secret",
                                           "retry_base_seconds": 60, **hook}])


def test_each_event_arrives_once_signed_though_the_receiver_fails_twice(
        make_app: Callable[..., App], tmp_path: Path, receiver: Receiver) -> None:
    """A case opened by mail, answered and closed: its three events are delivered, each
    exactly once, though the receiver refuses the first two requests (they are tried
    again, with the same webhook-id, after the backoff); every request is signed."""
    clock = Clock()
    app = hooked(make_app, receiver.url, clock)
    raw = mail(sender=CARL, subject="Printer on fire").as_bytes()
    app.intake.accept(raw, mail_from=CARL, rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    desk = app.desk()
    desk.reply(1000, "We are on it.", desk.author(None))
    desk.close(1000, "New fuser.", desk.author(None))
    assert app.webhook_sender.drain() == {"retried": 2, "sent": 1}  # two refusals
    clock.now += timedelta(seconds=59)
    assert app.webhook_sender.drain() == {}  # the backoff is not over
    clock.now += timedelta(seconds=1)
    assert app.webhook_sender.drain() == {"sent": 2}
    clock.now += timedelta(hours=1)
    assert app.webhook_sender.drain() == {}
    delivered = receiver.requests[2:]
    types = [json.loads(body)["type"] for _, body in delivered]
    assert sorted(types) == ["case.closed", "case.created", "comment.added"]
    ids = [headers["webhook-id"] for headers, _ in delivered]
    assert len(set(ids)) == 3  # each event answered 2xx once, never sent again
    assert {headers["webhook-id"] for headers, _ in receiver.requests[:2]} <= set(ids)
    assert all(verified(tmp_path / "crm.secret", headers, body)
               for headers, body in receiver.requests)
    first = json.loads(delivered[0][1])
    assert first["data"]["case"]["number"] == "00001000"


def test_a_change_that_rolls_back_sends_nothing(make_app: Callable[..., App],
                                                receiver: Receiver) -> None:
    """An event queued in a transaction that is then refused leaves no delivery."""
    clock = Clock()
    app = hooked(make_app, receiver.url, clock, events=["case.closed"])
    desk = app.desk()
    desk.new(desk_request(), desk.author(None))
    desk.close(1000, "Done.", desk.author(None))
    with pytest.raises(CaseError):
        desk.close(1000, "Again.", desk.author(None))
    with app.sessions() as session:
        rows = session.scalars(select(WebhookDelivery)).all()
    assert [row.event_type for row in rows] == ["case.closed"]


def desk_request() -> NewCase:
    return NewCase(email=CARL, subject="By phone")


def test_a_receiver_that_never_answers_ends_failed_and_can_be_retried(
        make_app: Callable[..., App], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Past its deadline a delivery is failed; `webhooks list` shows it with the last
    error and `webhooks retry` queues it again."""
    clock = Clock()
    app = hooked(make_app, "http://127.0.0.1:9/nobody", clock, events=["case.created"],
                 deadline_hours=0.05, timeout=2)
    desk = app.desk()
    desk.new(desk_request(), desk.author(None))
    outcomes: dict[str, int] = {}
    for _ in range(5):
        for kind, count in app.webhook_sender.drain().items():
            outcomes[kind] = outcomes.get(kind, 0) + count
        clock.now += timedelta(minutes=2)
    assert outcomes == {"retried": 1, "failed": 1}
    config = str(tmp_path / "mailcase.toml")
    capsys.readouterr()
    assert main(["-c", config, "webhooks", "list", "--status", "failed", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["type"], row["attempts"]) == ("case.created", 2)
    assert "ConnectError" in row["last_error"]
    assert main(["-c", config, "webhooks", "retry", str(row["id"])]) == 0
    with app.sessions() as session:
        assert session.scalars(select(WebhookDelivery.status)).one() == "pending"
