"""mailcase under systemd: the notify protocol (READY only once the listener is bound,
WATCHDOG keep-alives from the event loop, STOPPING on SIGTERM), socket activation,
and unit files that systemd itself accepts."""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailcase.service.systemd import ServiceManager, passed_sockets
from tests.service.test_serve import MAILCASE, example_config, listening, run
from tests.support.mailsink import free_port
from tests.support.paths import ROOT
from tests.support.servers import mail, wait_for


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(tmp_path / "notify"))
        sock.settimeout(30)
        yield sock


def messages(sock: socket.socket, until: str, limit: int = 50) -> list[dict[str, str]]:
    """Datagrams as {KEY: value} until one holds ``until`` (``KEY=value``)."""
    got: list[dict[str, str]] = []
    for _ in range(limit):
        fields = dict(line.split("=", 1) for line in sock.recv(4096).decode().splitlines())
        got.append(fields)
        key, value = until.split("=", 1)
        if fields.get(key) == value:
            return got
    raise AssertionError(f"no {until} in {got}")


def test_ready_only_once_listening_then_watchdog_then_stopping(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    """READY=1 arrives when the SMTP port already answers; WATCHDOG=1 keep-alives follow
    at half the watchdog timeout; SIGTERM says STOPPING=1 and exits 0."""
    port = free_port()
    config = example_config(tmp_path, port)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "200000"}
    env.pop("MAILCASE_CONFIG", None)
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = messages(notify_socket, until="READY=1")
        assert listening(port), "READY=1 came before the listener was bound"
        assert not any("WATCHDOG" in fields for fields in before[:-1])
        assert f"127.0.0.1:{port}" in before[-1]["STATUS"]
        started = time.monotonic()
        for _ in range(3):
            assert messages(notify_socket, until="WATCHDOG=1", limit=1)
        assert time.monotonic() - started < 5  # every 0.1 s, not never
        daemon.send_signal(signal.SIGTERM)
        assert messages(notify_socket, until="STOPPING=1")
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err


def test_socket_activation_serves_the_passed_socket(tmp_path: Path) -> None:
    """Given a listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID its own), serve takes
    mail on it and binds nothing itself: port 25 never needs root."""
    configured = free_port()
    config = example_config(tmp_path, configured)
    with socket.socket() as passed:
        passed.bind(("127.0.0.1", 0))
        passed.listen(16)
        port = passed.getsockname()[1]
        fd = passed.fileno()
        env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
        env["LISTEN_FDS"] = "1"
        # A launcher puts the socket at fd 3 and names its own pid, which exec keeps
        # (dash cannot name descriptors above 9, so this is Python, not sh).
        launcher = ("import os, sys; fd = int(sys.argv[1]); "
                    "fd == 3 or (os.dup2(fd, 3), os.close(fd)); "
                    "os.environ['LISTEN_PID'] = str(os.getpid()); "
                    "os.execv(sys.argv[2], sys.argv[2:])")
        daemon = subprocess.Popen(
            [sys.executable, "-c", launcher, str(fd), *MAILCASE, "-c", str(config), "serve"],
            env=env, pass_fds=(fd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # The kernel queues the connection at once; the greeting comes when serve runs.
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.send_message(mail(message_id="<activated@customer.org>"))
        wait_for(lambda: "00001000" in run("-c", str(config), "cases", "list").stdout,
                 timeout=10, what="the case from mail on the passed socket")
        assert not listening(configured)
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "sockets from the service manager" in err


def test_the_service_manager_is_read_once_and_hidden_from_children() -> None:
    """NOTIFY_SOCKET, the watchdog and LISTEN_* are taken out of the environment; an
    abstract socket name gets its NUL; a watchdog meant for another pid is ignored."""
    environ = {"NOTIFY_SOCKET": "@systemd/notify", "WATCHDOG_USEC": "30000000",
               "WATCHDOG_PID": str(os.getpid()), "LISTEN_PID": "1", "LISTEN_FDS": "1"}
    manager = ServiceManager.from_environment(environ)
    assert manager.address == "\0systemd/notify"
    assert manager.watchdog_interval == 15.0
    assert passed_sockets(environ) == []  # LISTEN_PID names another process
    assert environ == {}
    other = ServiceManager.from_environment({"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval is None
    assert not ServiceManager(None).ready("nothing listens")


def test_a_vanished_notify_socket_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    """A manager whose socket is gone gets no message and the daemon carries on."""
    assert not ServiceManager(str(tmp_path / "gone")).watchdog()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_the_unit_files_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """systemd's own checker accepts the service and socket units as shipped (with the
    ExecStart path pointed at this install)."""
    mailcase = str(Path(sys.executable).parent / "mailcase")
    for name in ("mailcase.service", "mailcase.socket"):
        text = (ROOT / "systemd" / name).read_text().replace("/usr/bin/mailcase", mailcase)
        (tmp_path / name).write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "mailcase.service"),
         str(tmp_path / "mailcase.socket")],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path)
    problems = [line for line in result.stderr.splitlines()
                if "mailcase" in line and "Documentation" not in line]
    assert result.returncode == 0 and not problems, result.stderr
