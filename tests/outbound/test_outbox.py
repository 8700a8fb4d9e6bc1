"""Outbound delivery through a real SMTP sink: 2xx sent, 4xx and dead relays retried,
5xx failed at once with the reply kept, and a deadline that ends retrying."""

from __future__ import annotations

import json
import mailbox
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from mailcase.app import App, make_transport
from mailcase.cli import main
from mailcase.outbound.outbox import OutboxSender
from mailcase.outbound.transports import Envelope, Result, Transport
from mailcase.store.models import OutboundMail
from tests.support.mailsink import Sink, free_port
from tests.support.servers import mail


def new_case(app: App) -> None:
    """Accept and process one customer mail, which queues one acknowledgement."""
    app.intake.accept(mail(message_id="<q@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()


def outbound(app: App) -> OutboundMail:
    with app.sessions() as session:
        return session.scalars(select(OutboundMail)).one()


def make_due(app: App) -> None:
    with app.sessions.begin() as session:
        for row in session.scalars(select(OutboundMail)):
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)


def test_temporary_failure_is_retried_until_sent(app: App, sink: Sink) -> None:
    """A 451 from the relay defers the mail with backoff; the next try delivers it once."""
    new_case(app)
    sink.fail_next("451 4.3.0 Try again later")
    app.sender.drain()
    row = outbound(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error == "451 4.3.0 Try again later"
    assert row.next_attempt_at > datetime.now(UTC)
    assert app.sender.drain() == {}  # not due yet
    make_due(app)
    assert app.sender.drain() == {"sent": 1}
    row = outbound(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 2, None)
    sink.expect(1)


def test_permanent_failure_is_not_retried(app: App, sink: Sink) -> None:
    """A 5xx from the relay fails the mail at once and keeps the code and text."""
    new_case(app)
    sink.fail_next("550 5.1.1 No such user", stage="RCPT")
    app.sender.drain()
    make_due(app)
    app.sender.drain()
    row = outbound(app)
    assert row.status == "failed"
    assert row.last_error == "550 5.1.1 No such user"
    sink.expect(0)


def test_unreachable_relay_is_a_temporary_failure(make_app: Callable[..., App]) -> None:
    """When the relay does not answer at all the mail waits for a later try."""
    app = make_app(outbound={"port": free_port()})
    new_case(app)
    app.sender.drain()
    row = outbound(app)
    assert row.status == "pending" and row.attempts == 1
    assert row.last_error and row.last_error.startswith("connect 127.0.0.1:")


def test_deadline_ends_retrying(app: App, sink: Sink) -> None:
    """A mail still failing temporarily after its deadline is marked failed."""
    new_case(app)
    with app.sessions.begin() as session:
        session.scalars(select(OutboundMail)).one().deadline_at = datetime.now(UTC)
    sink.fail_next("421 4.4.2 Busy")
    app.sender.drain()
    assert outbound(app).status == "failed"


def test_maildir_transport_writes_the_mail(make_app: Callable[..., App], tmp_path: object) -> None:
    """The default transport of the example config drops the mail into a Maildir."""
    app = make_app(outbound={"transport": "maildir", "maildir": "out"})
    new_case(app)
    assert app.sender.drain() == {"sent": 1}
    [message] = list(mailbox.Maildir(app.settings.outbound.maildir, create=False))
    assert message["To"] == "Ann Customer <ann@customer.org>"
    assert message["Delivered-To"] == "ann@customer.org"
    assert outbound(app).status == "sent"


class DiesAfterFirst:
    """A transport that delivers the first mail of a batch for real, then the process dies."""

    def __init__(self, real: Transport) -> None:
        self.real = real

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]:
        for result in self.real.deliver(batch):
            yield result
            raise SystemExit("killed mid-batch")


def test_a_crash_mid_batch_resends_only_what_was_not_sent(
    make_app: Callable[..., App], sink: Sink
) -> None:
    """Each mail is recorded the moment the relay takes it: after a crash in the middle of
    a batch, every mail reaches the relay exactly once."""
    app = make_app(mailbox={"address": "support@example.com", "auto_response_interval": 0})
    for number in range(3):
        app.intake.accept(mail(message_id=f"<m{number}@customer.org>", subject=f"S{number}")
                          .as_bytes(), mail_from="ann@customer.org",
                          rcpt_to=["support@example.com"], source="test")
    app.processor.drain()
    dying = OutboxSender(app.sessions, DiesAfterFirst(make_transport(app.settings)),
                         app.settings.outbound, app.clock, jitter=False)
    with pytest.raises(SystemExit):
        dying.drain()
    with app.sessions() as session:
        statuses = session.scalars(select(OutboundMail.status).order_by(OutboundMail.id)).all()
    assert statuses == ["sent", "pending", "pending"]
    make_due(app)  # the lease of the dead sender runs out
    assert app.sender.drain() == {"sent": 2}
    assert sorted(m["Subject"] or "" for m in sink.expect(3)) == [
        "[Case #00001000] S0", "[Case #00001001] S1", "[Case #00001002] S2"]


class SlowRelay:
    """A transport whose every mail takes longer than the whole lease (on a test clock)."""

    def __init__(self, real: Transport, clock: list[datetime], step: timedelta) -> None:
        self.real, self.clock, self.step = real, clock, step

    def deliver(self, batch: Sequence[Envelope]) -> Iterator[Result]:
        for result in self.real.deliver(batch):
            self.clock[0] += self.step
            yield result


def test_slow_batch_keeps_its_lease(make_app: Callable[..., App], sink: Sink) -> None:
    """A batch slower than the lease renews it, so no second sender can take and resend
    the mails still waiting in it."""
    app = make_app(mailbox={"address": "support@example.com", "auto_response_interval": 0})
    for number in range(3):
        app.intake.accept(mail(message_id=f"<s{number}@customer.org>").as_bytes(),
                          mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                          source="test")
    app.processor.drain()
    now = [datetime.now(UTC)]
    slow = OutboxSender(app.sessions, make_transport(app.settings), app.settings.outbound,
                        lambda: now[0], jitter=False)
    slow.transport = SlowRelay(slow.transport, now, timedelta(seconds=slow.lease_seconds))
    rival = OutboxSender(app.sessions, make_transport(app.settings), app.settings.outbound,
                         lambda: now[0], jitter=False)
    rival_took: list[Counter[str]] = []
    original = slow.extend

    def extend_then_race(ids: list[int]) -> None:
        original(ids)
        rival_took.append(rival.drain())  # a second instance looks for due mail right now

    slow.extend = extend_then_race  # type: ignore[method-assign]
    assert slow.drain() == {"sent": 3}
    assert rival_took and all(took == {} for took in rival_took)
    sink.expect(3)


def test_outbox_list_and_retry_from_the_command_line(
    app: App, sink: Sink, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`outbox list --json` shows a failed mail with the relay's words; `outbox retry`
    sends it; retrying a sent mail is refused in one line."""
    new_case(app)
    sink.fail_next("554 5.7.1 Rejected for policy reasons", stage="DATA")
    app.sender.drain()
    config = str(tmp_path / "mailcase.toml")
    capsys.readouterr()
    assert main(["-c", config, "outbox", "list", "--status", "failed", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["id"], row["status"], row["kind"], row["case"]) == (
        1, "failed", "auto_response", "00001000")
    assert row["last_error"] == "554 5.7.1 Rejected for policy reasons"
    assert row["mail_from"].startswith("support+bounce-1-")
    assert main(["-c", config, "outbox", "retry", "1"]) == 0
    assert app.sender.drain() == {"sent": 1}
    sink.expect(1)
    capsys.readouterr()
    assert main(["-c", config, "outbox", "retry", "1"]) == 1
    err = capsys.readouterr().err
    assert err == "mailcase: outbound 1 was sent already; retrying would send it twice\n"
    assert main(["-c", config, "outbox", "list"]) == 0
    assert "sent" in capsys.readouterr().out
