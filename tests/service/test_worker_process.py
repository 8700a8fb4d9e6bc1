"""`mailcase serve` processes in a child process: the child is woken by the listener,
replaced when it dies, and never outlives the listener."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from mailcase import config
from mailcase.app import App
from mailcase.service.worker import WorkerProcess
from tests.service.test_serve import MAILCASE, example_config, listening, run
from tests.support.mailsink import free_port
from tests.support.servers import mail, send, wait_for


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


class DeadChild:
    """Stands in for a child process that has exited."""

    def __init__(self, code: int) -> None:
        self.returncode = code
        self.pid = 1

    def poll(self) -> int:
        return self.returncode

    def wait(self, _timeout: float | None = None) -> int:
        return self.returncode


def test_a_child_that_keeps_dying_is_restarted_ever_more_slowly(tmp_path: Path) -> None:
    """The first death restarts at once; quick deaths in a row wait 5, 10, 20 s … (capped);
    a child that lived a minute resets the delay. No restarts once stopping."""
    now = [1000.0]
    path = example_config(tmp_path, free_port())
    child = WorkerProcess(path, config.load(path), clock=lambda: now[0])
    starts: list[float] = []

    def fake_start() -> None:
        starts.append(now[0])
        child.process = DeadChild(78)  # type: ignore[assignment]
        child._started_at = now[0]

    child.start = fake_start  # type: ignore[method-assign]
    child.start()
    now[0] += 100  # lived long: restart at once
    child.check()
    assert starts[-1] == 1100
    now[0] += 1  # died quickly: still at once (first quick death)
    child.check()
    assert starts[-1] == 1101
    now[0] += 1  # died quickly again: 5 s
    child.check()
    assert starts[-1] == 1101
    now[0] += 4.9
    child.check()
    assert starts[-1] == 1101
    now[0] += 0.2
    child.check()
    assert len(starts) == 4 and starts[-1] == now[0]
    now[0] += 1  # and again: 10 s
    child.check()
    now[0] += 9
    child.check()
    assert len(starts) == 4
    now[0] += 1.1
    child.check()
    assert len(starts) == 5
    child.stop()
    now[0] += 1000
    child.check()
    assert len(starts) == 5


def test_a_stop_finishes_the_mail_in_hand_not_the_backlog(app: App) -> None:
    """The processor looks at its stop flag between mails: asked to stop after the
    second, it leaves the rest pending for the next start."""
    for n in range(5):
        app.intake.accept(mail(message_id=f"<backlog{n}@customer.org>").as_bytes(),
                          mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                          source="test")
    looks: list[int] = []

    def stop() -> bool:
        looks.append(1)
        return len(looks) > 2

    assert app.processor.drain(stop) == {"processed": 2}
    assert app.processor.drain() == {"processed": 3}


def test_sigterm_to_the_whole_unit_stops_both_without_a_restart(tmp_path: Path) -> None:
    """systemd signals every process of the unit: the child stops with the listener and
    is not replaced while the listener shuts down; both exit, nothing is left."""
    port = free_port()
    config = example_config(tmp_path, port)
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"], start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: listening(port) and len(children(daemon.pid)) == 1, timeout=30,
             what="the listener and its processing child")
    [child] = children(daemon.pid)
    os.killpg(daemon.pid, signal.SIGTERM)
    _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "starting a new one" not in err
    assert not alive(child)
