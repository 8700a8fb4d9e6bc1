"""`mailcase serve` as ops and new users run it: the example config, a real process, mail
in over SMTP, the acknowledgement in the Maildir, and a clean stop on SIGTERM."""

from __future__ import annotations

import mailbox
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mailsink import free_port
from tests.support.paths import ROOT
from tests.support.servers import mail, send, wait_for

MAILCASE = [sys.executable, "-m", "mailcase"]


def example_config(folder: Path, port: int) -> Path:
    """config.example.toml as shipped, moved to ``folder`` with only the ports changed (it
    needs no file of the repository: the templates are built in)."""
    text = (ROOT / "config.example.toml").read_text()
    assert "port = 2525" in text
    text = text.replace("port = 2525", f"port = {port}")
    assert "port = 8025" in text  # the health endpoint: a free port of its own
    text = text.replace("port = 8025", f"port = {free_port()}")
    path = folder / "mailcase.toml"
    path.write_text(text)
    return path


def serve_process(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    """`mailcase serve` with its stderr in ``log``, once it listens on ``port``."""
    env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
    with log.open("w") as stderr:
        daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    wait_for(lambda: listening(port) or daemon.poll() is not None, timeout=30,
             what="the listener")
    assert daemon.poll() is None, log.read_text()
    return daemon


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
    return subprocess.run([*MAILCASE, *args], capture_output=True, text=True, timeout=60,
                          env=env, check=False)


def test_serve_with_the_example_config(tmp_path: Path) -> None:
    """The README's first command: a fresh start creates the database and the token
    secret, a mail becomes a case within a second, the acknowledgement lands in the
    Maildir, and SIGTERM stops the daemon with exit 0."""
    port = free_port()
    config = example_config(tmp_path, port)
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: listening(port) or daemon.poll() is not None, timeout=30,
                 what="the listener")
        assert daemon.poll() is None, daemon.communicate()[1]
        assert (tmp_path / "var" / "token-secret").stat().st_mode & 0o777 == 0o600
        send(port, mail(message_id="<serve@customer.org>"))

        def listed() -> bool:
            result = run("-c", str(config), "cases", "list")
            return "00001000  New" in result.stdout
        wait_for(listed, timeout=20, what="the case in 'cases list'")

        outbound = tmp_path / "var" / "outbound"
        wait_for(lambda: outbound.exists() and len(mailbox.Maildir(outbound)) == 1,
                 timeout=5, what="the acknowledgement in the Maildir")
        [ack] = list(mailbox.Maildir(outbound))
        assert ack["Subject"] == "[Case #00001000] Printer on fire"
        assert ack["Auto-Submitted"] == "auto-replied"
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=30)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err


def test_serve_on_a_port_in_use_says_so_in_one_line(tmp_path: Path) -> None:
    """A second daemon on a taken port stops with one line naming the address."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("-c", str(example_config(tmp_path, port)), "serve")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("mailcase:")]
    assert lines == [f"mailcase: cannot listen on 127.0.0.1:{port}: Address already in use"]
    assert "Traceback" not in result.stderr


@pytest.fixture
def sigint_default() -> Iterator[None]:
    """Children start with SIGINT's default action even when the test runner was started
    with it ignored (as `cmd &` in a script does): a terminal's Ctrl-C reaches them."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def mapped(pid: int, library: str) -> bool:
    """Whether process ``pid`` has loaded ``library`` (a compiled module) by now."""
    try:
        return library in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def child_pid(log: Path) -> int | None:
    """The processing child's process id, once serve has logged starting it."""
    found = re.search(r"processing runs in process (\d+)", log.read_text())
    return int(found.group(1)) if found else None


# When to press Ctrl-C, and the exit that is sane then: 130 while serve is importing
# (interrupted before it ran), 0 once its loop takes SIGINT as a request to stop.
MOMENTS = {"importing": 130, "child starting": 0, "ready": 0}


@pytest.mark.usefixtures("sigint_default")
@pytest.mark.parametrize("moment", MOMENTS)
def test_ctrl_c_is_quiet_at_any_moment(tmp_path: Path, moment: str) -> None:
    """Ctrl-C in a terminal signals the whole foreground process group: while serve is
    still importing (pydantic's compiled core loaded, the config not yet read), while
    its processing child is starting, and once it listens. Neither process prints a
    traceback (the child printed one: it got the SIGINT in the middle of its imports),
    serve exits 130 or stops cleanly with 0, and no child is left behind."""
    port = free_port()
    config = example_config(tmp_path, port)
    log = tmp_path / "stderr"
    env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
    with log.open("w") as stderr:
        daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, process_group=0)
    child = None
    try:
        if moment == "importing":
            wait_for(lambda: mapped(daemon.pid, "pydantic_core"), timeout=30,
                     what="serve importing its modules")
        else:
            child = wait_for(lambda: child_pid(log), timeout=30, what="the processing child")
        if moment == "ready":
            wait_for(lambda: listening(port), timeout=30, what="the listener")
        os.killpg(daemon.pid, signal.SIGINT)
        code = daemon.wait(timeout=60)
        if child is not None:
            wait_for(lambda: not Path(f"/proc/{child}").exists(), timeout=60,
                     what=f"the processing child {child} ending")
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    err = log.read_text()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert code == MOMENTS[moment], err
