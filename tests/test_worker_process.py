"""`mailcase serve` processes in a child process: the child is woken by the listener,
replaced when it dies, and never outlives the listener."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.support.mailsink import free_port
from tests.support.servers import mail, send, wait_for
from tests.test_serve import MAILCASE, example_config, listening, run


def children(pid: int) -> list[int]:
    result = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True,
                            text=True, check=False)
    return [int(line) for line in result.stdout.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped) counts as gone.
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def case_count(config: Path) -> int:
    result = run("-c", str(config), "cases", "list", "--json")
    return result.stdout.count('"number"')


def test_the_child_is_replaced_when_it_dies_and_stops_with_serve(
    tmp_path: Path,
) -> None:
    """serve starts one `mailcase work` child that turns mail into cases; killed, it is
    replaced and the next mail is processed; SIGTERM to serve ends both."""
    port = free_port()
    config = example_config(tmp_path, port)
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: listening(port) and len(children(daemon.pid)) == 1, timeout=30,
                 what="the listener and its processing child")
        [child] = children(daemon.pid)
        assert "work" in Path(f"/proc/{child}/cmdline").read_text()
        wait_for(lambda: os.getpriority(os.PRIO_PROCESS, child)
                 > os.getpriority(os.PRIO_PROCESS, daemon.pid), timeout=10,
                 what="the child at a lower CPU priority")
        send(port, mail(message_id="<first-child@customer.org>"))
        wait_for(lambda: case_count(config) == 1, timeout=10, what="a case from the child")

        os.kill(child, signal.SIGKILL)
        wait_for(lambda: [c for c in children(daemon.pid) if c != child and alive(c)],
                 timeout=15, what="a new processing child")
        send(port, mail(message_id="<second-child@customer.org>", subject="Another"))
        wait_for(lambda: case_count(config) == 2, timeout=10, what="a case from the new child")
        [replacement] = [c for c in children(daemon.pid) if alive(c)]
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert not alive(replacement)
    assert "exited with -9; starting a new one" in err


def test_the_child_stops_when_the_listener_dies(tmp_path: Path) -> None:
    """A listener killed outright leaves no processing child behind: the child sees its
    wake-up pipe close and exits."""
    port = free_port()
    config = example_config(tmp_path, port)
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: listening(port) and len(children(daemon.pid)) == 1, timeout=30,
             what="the listener and its processing child")
    [child] = children(daemon.pid)
    daemon.kill()
    daemon.wait(timeout=10)
    wait_for(lambda: not alive(child), timeout=15, what="the orphaned child to exit")
