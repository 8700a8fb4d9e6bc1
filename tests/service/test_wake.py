"""Work committed by the command line wakes the running daemon (store.doorbell): an
agent's answer leaves within a second, not at the daemon's next look."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from mailcase.identity.tokens import load_secrets
from mailcase.store import db
from mailcase.store.doorbell import Doorbell, NotifyDoorbell, SocketDoorbell
from tests.service.test_serve import run, serve_process
from tests.support.mailsink import free_port
from tests.support.servers import mail, send, wait_for, write_config

POLL_SECONDS = 120  # far longer than any bound below: only a wake-up can explain speed
WAKE_BOUND = 10.0  # generous for a loaded machine; the benchmark reports the real figure


def delivered(maildir: Path) -> list[Path]:
    new = maildir / "new"
    return sorted(new.iterdir()) if new.exists() else []


@pytest.fixture
def serving(tmp_path: Path, database_url: str) -> tuple[Path, Path]:
    """`mailcase serve` (listener and processing child) on ``database_url`` with a
    Maildir outbox and a long poll interval; yields its config and the Maildir."""
    port = free_port()
    config = write_config(tmp_path, database_url, None,
                          smtp={"port": port},
                          processing={"poll_seconds": POLL_SECONDS})
    load_secrets(tmp_path / "token-secret", create=True)  # the database is not new
    daemon = serve_process(config, port, tmp_path / "serve.log")
    try:
        send(port, mail(message_id="<wake@customer.org>"))
        maildir = tmp_path / "outbound"
        wait_for(lambda: len(delivered(maildir)) == 1, timeout=20,
                 what="the acknowledgement of the first mail")
        yield config, maildir
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
    assert daemon.returncode == 0, (tmp_path / "serve.log").read_text()


def test_an_agents_reply_from_the_command_line_leaves_at_once(
    serving: tuple[Path, Path],
) -> None:
    """`cases reply` commits the answer and rings: the running daemon sends it within
    seconds although its next look is two minutes away (SQLite: the wake socket;
    PostgreSQL: NOTIFY)."""
    config, maildir = serving
    [number] = json.loads(run("-c", str(config), "cases", "list", "--json").stdout)
    result = run("-c", str(config), "cases", "reply", str(number["number"]),
                 "--body", "Fixed it.")
    assert result.returncode == 0, result.stderr
    queued = time.monotonic()
    wait_for(lambda: len(delivered(maildir)) == 2, timeout=WAKE_BOUND,
             what="the reply, sent on the wake-up")
    latency = time.monotonic() - queued
    assert "Fixed it." in delivered(maildir)[-1].read_text()
    assert latency < WAKE_BOUND


def test_a_replayed_mail_is_processed_at_once(
    serving: tuple[Path, Path], tmp_path: Path,
) -> None:
    """`inbound replay` wakes the processor in the child too, not only the sender: an
    auto-reply dropped by screening, replayed past it, becomes a case at once."""
    config, _ = serving
    port = int(config.read_text().split("port = ")[1].split()[0])
    send(port, mail(message_id="<vacation@customer.org>", subject="Out of office",
                    auto_submitted="auto-replied"))

    def inbound(status: str) -> int:
        return run("-c", str(config), "inbound", "list", "--status", status,
                   "--json").stdout.count('"id"')

    wait_for(lambda: inbound("dropped") == 1, timeout=20, what="the auto-reply dropped")
    result = run("-c", str(config), "inbound", "replay", "2", "--skip-screening")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: inbound("processed") == 2, timeout=WAKE_BOUND,
             what="the replayed mail processed on the wake-up")


def test_the_socket_doorbell_rings_a_listener_and_cleans_up(tmp_path: Path) -> None:
    """A ring reaches the listener; a stale socket left by a killed daemon is replaced;
    the socket takes the database file's mode; closing removes it."""
    database = tmp_path / "mailcase.db"
    database.touch(mode=0o640)
    database.chmod(0o640)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind(str(tmp_path / "mailcase.db-wake"))
    stale.close()  # the file stays, as after a crash
    bell = Doorbell.for_engine(create_engine(f"sqlite:///{database}"))
    assert isinstance(bell, SocketDoorbell)
    assert bell.path == tmp_path / "mailcase.db-wake"  # beside -wal and -shm
    rung = threading.Event()
    listening = bell.listen(rung.set)
    try:
        assert (tmp_path / "mailcase.db-wake").stat().st_mode & 0o777 == 0o640
        bell.ring()
        assert rung.wait(5)
    finally:
        listening.close()
    assert not (tmp_path / "mailcase.db-wake").exists()
    bell.ring()  # nobody listening: not an error


def test_a_ring_nobody_hears_and_a_path_too_long_do_not_fail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Without a daemon the ring is silent; a database so deep that its socket path
    does not fit a Unix address listens not at all, and says so once."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    bell = Doorbell.for_engine(create_engine(f"sqlite:///{deep / 'mailcase.db'}"))
    with caplog.at_level(logging.WARNING, logger="mailcase.store.doorbell"):
        bell.ring()
        listening = bell.listen(lambda: None)
        listening.close()
    assert listening.thread is None
    assert [r.message for r in caplog.records if "longer than a Unix socket" in r.message]
    memory = Doorbell.for_engine(create_engine("sqlite://"))
    assert type(memory) is Doorbell


def test_postgresql_rings_every_listener(pg_server_url: str) -> None:
    """NOTIFY reaches every daemon on the database (one per host)."""
    engine = db.create(pg_server_url)
    bell = Doorbell.for_engine(engine)
    assert isinstance(bell, NotifyDoorbell)
    heard = [threading.Event(), threading.Event()]
    ears = [bell.listen(event.set) for event in heard]
    try:
        for event in heard:  # each rings once on connecting, then waits
            assert event.wait(10)
            event.clear()
        bell.ring()
        assert all(event.wait(5) for event in heard)
    finally:
        for ear in ears:
            ear.close()
        engine.dispose()


def test_a_second_daemon_does_not_steal_the_wake_socket(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """A second listener on the same database (a mistaken second serve) leaves the first
    one's socket alone, says so, and its stopping does not remove it."""
    bell = Doorbell.for_engine(create_engine(f"sqlite:///{tmp_path / 'mailcase.db'}"))
    first_rung = threading.Event()
    first = bell.listen(first_rung.set)
    try:
        with caplog.at_level(logging.WARNING, logger="mailcase.store.doorbell"):
            second = bell.listen(lambda: None)
        assert second.thread is None
        assert any("another daemon listens" in r.message for r in caplog.records)
        second.close()
        bell.ring()
        assert first_rung.wait(5)
    finally:
        first.close()
    assert not (tmp_path / "mailcase.db-wake").exists()
