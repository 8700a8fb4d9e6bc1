"""Two `mailcase serve` processes on one PostgreSQL database sweep the same overdue cases
and together alert exactly once per breach (advisory lock and claimed rows).

The daemons run on the real clock (a subprocess has no other), so the target is one
second long: the test waits for the alerts to arrive, never for a fixed time."""

from __future__ import annotations

import signal
import subprocess
from email.parser import BytesParser
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from mailcase.cli import main
from mailcase.identity.tokens import load_secrets
from mailcase.store.models import OutboundMail
from tests.service.test_serve import run, serve_process
from tests.support.mailsink import Sink, free_port
from tests.support.servers import mail, send, wait_for, write_config

BOB = "bob@example.com"
CASES = 12


def breach_alerts(url: str) -> list[str]:
    """The recipients of every breach alert queued, from the shared database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(OutboundMail.rcpt_to, OutboundMail.raw)).all()
    finally:
        engine.dispose()
    return [rcpt for rcpt, raw in rows
            if "Overdue:" in (BytesParser().parsebytes(raw, headersonly=True)["Subject"] or "")]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_instances_alert_once_per_breach(tmp_path: Path, database_url: str,
                                             sink: Sink) -> None:
    """Mail comes in to both; each case's 1s target runs out while both instances
    sweep five times a second; each case still gets one breach alert, and `mailcase
    process` (which sweeps too) finds nothing left to do."""
    secret = tmp_path / "token-secret"
    load_secrets(secret, create=True)
    configs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        port = free_port()
        configs.append((write_config(
            folder, database_url, sink.port, smtp={"port": port},
            tokens={"secret_file": str(secret)},
            cases={"default_owner": BOB, "sweep_seconds": 0.2},
            sla=[{"name": "second", "first_response": "1s", "warning": 0}]), port))
    first = str(configs[0][0])
    assert main(["-c", first, "agents", "add", BOB]) == 0

    daemons: list[subprocess.Popen[bytes]] = []
    try:
        for index, (config, port) in enumerate(configs):
            daemons.append(serve_process(config, port, tmp_path / f"serve{index}.log"))
        for n in range(CASES):
            send(configs[n % 2][1], mail(sender=f"customer{n}@customer.org",
                                         subject=f"Problem {n}"))
        wait_for(lambda: len(breach_alerts(database_url)) >= CASES, timeout=60,
                 what="a breach alert for every overdue case")
        # Both keep sweeping meanwhile; a few more rounds of each would show a repeat.
        wait_for(lambda: len(sink.messages) >= CASES, timeout=60, what="the alerts sent")
    finally:
        for daemon in daemons:
            daemon.send_signal(signal.SIGTERM)
        for daemon in daemons:
            daemon.wait(timeout=60)
    for index, daemon in enumerate(daemons):
        assert daemon.returncode == 0, (tmp_path / f"serve{index}.log").read_text()
    assert breach_alerts(database_url) == [BOB] * CASES
    result = run("-c", first, "process")
    assert result.returncode == 0, result.stderr
    assert "cases: nothing to do" in result.stdout
