"""A stop that loses nothing: `mailcase serve` under a burst of SMTP mail gets SIGTERM,
answers newcomers 421 while the mail under way finishes, exits 0, and after a restart
every mail that heard 250 is processed exactly once."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from tests.service.test_serve import MAILCASE, example_config, listening, run
from tests.support.mailsink import free_port
from tests.support.servers import mail, wait_for


class Burst:
    """Client threads sending one mail per connection until the server stops taking
    them; remembers the Message-ID of every mail that got a 250."""

    def __init__(self, port: int, threads: int = 3, per_thread: int = 200) -> None:
        self.port = port
        self.acknowledged: list[str] = []
        self.refusals: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send, args=(n, per_thread))
                         for n in range(threads)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def join(self) -> None:
        for thread in self._threads:
            thread.join(timeout=60)

    def count(self) -> int:
        with self._lock:
            return len(self.acknowledged)

    def _send(self, thread: int, count: int) -> None:
        for n in range(count):
            message_id = f"<burst-{thread}-{n}@customer.org>"
            message = mail(message_id=message_id, subject=f"Burst {thread}-{n}",
                           sender=f"sender{thread}x{n}@customer.org")
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                    client.send_message(message)
            except (smtplib.SMTPException, OSError) as exc:
                with self._lock:
                    self.refusals[type(exc).__name__] += 1
                return  # the server is stopping: this client gives up, as MTAs queue
            with self._lock:
                self.acknowledged.append(message_id)


def start_daemon(config: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILCASE_CONFIG"}
    daemon = subprocess.Popen([*MAILCASE, "-c", str(config), "serve"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: listening(port) or daemon.poll() is not None, timeout=30,
             what="the listener")
    assert daemon.poll() is None, daemon.communicate()[1]
    return daemon


def inbound(config: Path) -> list[dict[str, object]]:
    result = run("-c", str(config), "inbound", "list", "--json", "--limit", "100000")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_sigterm_under_a_burst_loses_nothing_and_answers_newcomers_421(
    tmp_path: Path
) -> None:
    """While a mail is still in DATA the stopping daemon answers new connections 421;
    that mail then gets its 250; the daemon exits 0; restarted, it processes every
    acknowledged mail exactly once and nothing else."""
    port = free_port()
    config = example_config(tmp_path, port)
    daemon = start_daemon(config, port)
    held = smtplib.SMTP("127.0.0.1", port, timeout=30)
    try:
        held.ehlo()
        held.mail("slow@customer.org")
        held.rcpt("support@example.com")
        held.putcmd("data")
        assert held.getreply()[0] == 354
        slow = mail(message_id="<slow@customer.org>", sender="slow@customer.org")
        held.send(slow.as_bytes().replace(b"\n", b"\r\n"))  # all but the final dot

        burst = Burst(port)
        burst.start()
        wait_for(lambda: burst.count() >= 20, timeout=60, what="20 mails of the burst")
        daemon.send_signal(signal.SIGTERM)
        burst.join()
        assert burst.refusals, "the burst should have met the stop"

        with pytest.raises(smtplib.SMTPConnectError) as refused:
            smtplib.SMTP("127.0.0.1", port, timeout=30)
        assert refused.value.smtp_code == 421
        assert daemon.poll() is None  # still draining: the slow mail is under way

        held.send(b".\r\n")
        code, text = held.getreply()
        assert code == 250, text
        acknowledged = [*burst.acknowledged, "<slow@customer.org>"]
    finally:
        held.close()
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err

    daemon = start_daemon(config, port)
    try:
        wait_for(lambda: all(row["status"] == "processed" for row in inbound(config)),
                 timeout=60, what="every stored mail processed after the restart")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.communicate(timeout=60)
    rows = inbound(config)
    stored = Counter(str(row["message_id"]) for row in rows)
    assert sorted(stored) == sorted(acknowledged), "stored mail differs from acknowledged"
    assert set(stored.values()) == {1}
    listed = run("-c", str(config), "cases", "list", "--json", "--limit", "100000")
    cases = json.loads(listed.stdout)
    assert len(cases) == len(acknowledged)  # one case each, none twice
