"""A crash soak: ``kill -9`` the daemon and its processing child under load, then count.

Run by hand, never by the test suite (a few minutes, real processes, real signals)::

    .venv/bin/python bench/soak.py --engine sqlite --cycles 12 --rate 8 --faults
    .venv/bin/python bench/soak.py --engine postgresql --cycles 12 --rate 8 --faults

Everything lives in a fresh temporary folder (and, for PostgreSQL, a fresh database
``soak_<pid>_<time>`` on 127.0.0.1:5432): a config, ``mailcase serve`` started as a
subprocess, and an aiosmtpd sink standing in for the smarthost that records the
Message-ID of each mail it takes (and can answer 451, the smarthost "down"). A sender
thread pool sends mail over SMTP at ``--rate`` mails a second, each with a Message-ID of
its own, a new connection each, and re-sends what got no 250 as an MTA would. Some mails
are replies to earlier ones (In-Reply-To), so both new cases and comments are made.

Each cycle waits until the daemon listens and has its processing child, waits a random
short time, and kills (SIGKILL) either ``serve`` (which is then started again at once, as
systemd's Restart= would) or the child (which ``serve`` restarts itself). Faults, each
behind a flag: the smarthost answering 451 for a while; on PostgreSQL an outage (by
default of the soak's own database: connections cut and refused; ``--pg-fault server``
restarts the whole cluster, only when no one else is connected to it); on SQLite a full
volume (the database on a small tmpfs that is filled up for a while; needs root).
With ``--imap`` a throwaway Dovecot serves the mailbox too, and a share of the load
(``--imap-share``) is APPENDed to its INBOX instead of sent by SMTP; the mailbox's
acknowledge mode is ``--imap-acknowledge``, and some kills land inside an IMAP pass.

At the end the sender stops making new mail but keeps re-sending what was refused, the
daemon drains (nothing pending in the inbound queue or the outbox), ``serve`` is stopped
with SIGTERM, and the database and the sink are compared with what the sender was told:

- every mail that got a 250 is stored exactly once and processed exactly once (one
  ``messages`` row; a new mail opens one case, a reply is a comment on its parent's case);
- every acknowledgement owed (one per new case) reached the sink at least once; copies
  of one outbound Message-ID beyond the first are counted as sent twice (README: a crash
  between the relay's 250 and its commit may send one mail twice, never none).

Exit status 1 when an acknowledged mail was lost, stored or processed twice, or an owed
acknowledgement never arrived; the folder (and database) are then kept for a look.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import heapq
import itertools
import json
import os
import random
import secrets
import shutil
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path
from typing import Any, TextIO

from aiosmtpd.controller import Controller
from imapclient.exceptions import IMAPClientError
from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' Dovecot launcher, shared with the tests
from tests.support.dovecot import Dovecot  # noqa: E402
from tests.support.dovecot import missing as dovecot_missing  # noqa: E402

MAILCASE = Path(sys.executable).with_name("mailcase")
SUPPORT = "support@example.com"
PG_HOST = "postgresql+psycopg://postgres@127.0.0.1:5432"
SEND_THREADS = 3
SEND_TIMEOUT = 20.0


def log(line: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {line}", flush=True)


def tool(name: str) -> str:
    """The full path of a system command (mount, umount, pg_ctlcluster)."""
    return shutil.which(name) or f"/usr/bin/{name}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listener_port(rng: random.Random) -> int:
    """A free port below the ephemeral range, for the listener that is killed and started
    again: a port from that range can be taken meanwhile as the local end of some client
    connection (its TIME_WAIT then blocks the bind for a minute; seen in this soak)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = rng.randrange(min(10000, low // 2), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


# --- the smarthost ---------------------------------------------------------------------

class Sink:
    """An aiosmtpd smarthost that records what it takes; ``down`` makes it answer 451."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down = False
        self.received: list[tuple[str, str, float]] = []  # (Message-ID, recipient, when)
        self.refused = 0
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          options: list[str]) -> str:
        if self.down:
            with self.lock:
                self.refused += 1
            return "451 4.3.0 smarthost down (soak fault)"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        headers = BytesHeaderParser(policy=compat32).parsebytes(content)
        message_id = str(headers.get("message-id") or "").strip()
        with self.lock:
            self.received.extend((message_id, rcpt.lower(), time.monotonic())
                                 for rcpt in envelope.rcpt_tos)
        return "250 2.0.0 OK"


# --- the sending MTA -------------------------------------------------------------------

@dataclass
class Mail:
    """One mail the sender owes the daemon, and what became of it."""

    number: int
    message_id: str
    sender: str
    raw: bytes
    parent: Mail | None = None
    attempts: int = 0
    acked: bool = False
    acked_at: float = 0.0
    rejected: str | None = None
    errors: Counter[str] = field(default_factory=Counter)


class Sender:
    """New mail at ``rate`` a second (while ``generating``), re-sent until it gets a 250."""

    def __init__(self, port: int, rate: float, reply_share: float, rng: random.Random,
                 tag: str, domain: str = "customer.example") -> None:
        self.port = port
        self.domain = domain  # the senders' domain: tells the channels' cases apart
        self.rate = rate
        self.reply_share = reply_share
        self.rng = rng
        self.tag = tag
        self.mails: list[Mail] = []
        self.lock = threading.Lock()
        self.generating = threading.Event()
        self.generating.set()
        self.stopped = threading.Event()
        self.jobs: list[tuple[float, int, Mail]] = []  # heap of (due, seq, mail)
        self.seq = itertools.count()
        self.wake = threading.Condition(self.lock)
        self.repliable: list[Mail] = []  # acknowledged new mails without a reply yet
        self.threads = [threading.Thread(target=self._generate, name="generate", daemon=True)]
        self.threads += [threading.Thread(target=self._send_loop, name=f"send {n}", daemon=True)
                         for n in range(SEND_THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop_generating(self) -> None:
        self.generating.clear()

    def stop(self) -> None:
        self.stopped.set()
        with self.wake:
            self.wake.notify_all()
        for thread in self.threads:
            thread.join(SEND_TIMEOUT + 5)

    def outstanding(self) -> int:
        with self.lock:
            return sum(1 for m in self.mails if not m.acked and m.rejected is None)

    def _new_mail(self) -> Mail:
        number = len(self.mails)
        parent = None
        if self.repliable and self.rng.random() < self.reply_share:
            parent = self.repliable.pop(self.rng.randrange(len(self.repliable)))
        message_id = f"<soak-{self.tag}-{number}@customer.example>"
        if parent is None:
            sender = f"ann{number}@c{number}.{self.domain}"
            subject = f"Soak {self.tag} printer {number} is on fire"
            threading_headers = ""
        else:
            sender = parent.sender
            subject = f"Re: Soak {self.tag} printer {parent.number} is on fire"
            threading_headers = (f"In-Reply-To: {parent.message_id}\r\n"
                                 f"References: {parent.message_id}\r\n")
        raw = (
            f"From: Ann {number} <{sender}>\r\nTo: Support <{SUPPORT}>\r\n"
            f"Subject: {subject}\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
            f"Message-ID: {message_id}\r\n{threading_headers}"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            f"Mail {number} of soak {self.tag}: {self.rng.getrandbits(64):016x}.\r\n"
        ).encode()
        return Mail(number, message_id, sender, raw, parent)

    def _generate(self) -> None:
        interval = 1.0 / self.rate
        due = time.monotonic()
        while not self.stopped.is_set() and self.generating.is_set():
            now = time.monotonic()
            if now < due:
                time.sleep(min(due - now, 0.1))
                continue
            due = max(due + interval, now - 1.0)  # never a catch-up burst after a stall
            with self.wake:
                mail = self._new_mail()
                self.mails.append(mail)
                heapq.heappush(self.jobs, (now, next(self.seq), mail))
                self.wake.notify()

    def _next_job(self) -> Mail | None:
        with self.wake:
            while not self.stopped.is_set():
                now = time.monotonic()
                if self.jobs and self.jobs[0][0] <= now:
                    return heapq.heappop(self.jobs)[2]
                self.wake.wait(min(self.jobs[0][0] - now, 0.2) if self.jobs else 0.2)
            return None

    def _send_loop(self) -> None:
        while (mail := self._next_job()) is not None:
            outcome = self._send(mail)
            with self.wake:
                mail.attempts += 1
                if outcome == "250":
                    mail.acked, mail.acked_at = True, time.monotonic()
                    if mail.parent is None:
                        self.repliable.append(mail)
                elif outcome.startswith("5"):
                    mail.rejected = outcome
                else:
                    mail.errors[outcome] += 1
                    # An MTA's retry, compressed: a second or two later, the same bytes.
                    heapq.heappush(self.jobs, (time.monotonic() + self.rng.uniform(0.5, 2.0),
                                               next(self.seq), mail))

    def _send(self, mail: Mail) -> str:
        """One try over a new connection: "250", a reply code, or the error's name."""
        client = smtplib.SMTP(timeout=SEND_TIMEOUT)
        try:
            client.connect("127.0.0.1", self.port)
            client.sendmail(mail.sender, [SUPPORT], mail.raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            return str(code)
        except smtplib.SMTPResponseException as exc:
            return str(exc.smtp_code)
        except (OSError, smtplib.SMTPException) as exc:
            return type(exc).__name__
        finally:
            try:  # after the 250 nothing the server does can take it back
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
        return "250"


# --- the hosted mailbox (IMAP) ---------------------------------------------------------

IMAP_KEYWORD = "$MailcaseStored"  # mailcase's default keyword
IMAP_DOMAIN = "imap.customer.example"
PROCESSED_FOLDER = "Processed"
@dataclass(frozen=True)
class Stored:
    """One mail in the IMAP mailbox as the soak finds it."""

    folder: str
    uid: int
    message_id: str
    flags: tuple[bytes, ...]


class Mailbox(Dovecot):
    """The tests' throwaway Dovecot (tests/support/dovecot.py), holding the support
    mailbox, with a look at every folder for the audit."""

    def contents(self) -> list[Stored]:
        """Every mail in every folder, with its Message-ID and flags (not \\\\Recent)."""
        client = self.client()
        found: list[Stored] = []
        try:
            for _, _, folder in client.list_folders():
                client.select_folder(folder, readonly=True)
                uids = client.search(["ALL"])
                if not uids:
                    continue
                field_name = b"BODY[HEADER.FIELDS (MESSAGE-ID)]"
                data = client.fetch(uids, ["FLAGS", "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
                for uid, item in data.items():
                    headers = BytesHeaderParser(policy=compat32).parsebytes(
                        item.get(field_name, b""))
                    found.append(Stored(folder, uid, str(headers.get("message-id", "")).strip(),
                                        tuple(f for f in item[b"FLAGS"] if f != b"\\Recent")))
        finally:
            with contextlib.suppress(IMAPClientError, OSError):
                client.logout()
        return found



def start_mailbox(root: Path) -> Mailbox:
    """A running Dovecot for ``--imap``, with a throwaway password; a clear exit when
    this machine cannot run one."""
    reason = dovecot_missing()
    if reason is not None:
        raise SystemExit(f"--imap needs Dovecot: {reason}")
    try:
        return Mailbox(root, password=secrets.token_hex(12))
    except AssertionError as exc:
        raise SystemExit(f"Dovecot did not start ({exc}); see {root / 'dovecot.log'}") from exc


def imap_marked(mail: Stored, acknowledge: str, keyword: str) -> bool:
    """Whether mailcase marked this mail as stored, as ``acknowledge`` says it does."""
    if acknowledge == "keyword":
        return mail.folder == "INBOX" and keyword.encode() in mail.flags
    if acknowledge == "seen":
        return mail.folder == "INBOX" and b"\\Seen" in mail.flags
    if acknowledge == "move":
        return mail.folder == PROCESSED_FOLDER or b"\\Deleted" in mail.flags
    return b"\\Deleted" in mail.flags


class ImapFeeder(Sender):
    """The sender's twin that APPENDs its mail to the IMAP INBOX: an OK is the ack."""

    def __init__(self, dovecot: Mailbox, rate: float, reply_share: float,
                 rng: random.Random, tag: str) -> None:
        super().__init__(dovecot.port, rate, reply_share, rng, tag, IMAP_DOMAIN)
        self.dovecot = dovecot
        self.appended = threading.Event()  # set at each APPEND's OK (for timed kills)
        for thread in self.threads:
            thread.name = f"imap {thread.name}"

    def _send(self, mail: Mail) -> str:
        try:
            client = self.dovecot.client(timeout=SEND_TIMEOUT)
            try:
                client.append("INBOX", mail.raw)
            finally:
                with contextlib.suppress(IMAPClientError, OSError):
                    client.logout()
        except (IMAPClientError, OSError) as exc:
            return type(exc).__name__
        self.appended.set()
        return "250"


class MarkAudit:
    """While the soak runs: every mail found marked on the server must already be stored
    (the mark only after the commit). Reads the mailbox first, the database second."""

    def __init__(self, dovecot: Mailbox, database: Database, acknowledge: str,
                 keyword: str) -> None:
        self.dovecot = dovecot
        self.database = database
        self.acknowledge = acknowledge
        self.keyword = keyword
        self.rounds = 0
        self.failures: Counter[str] = Counter()
        self.marked_seen: set[str] = set()
        self.early: list[str] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="mark audit", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(30)

    def _run(self) -> None:
        engine = self.database.engine()
        try:
            while not self.stopped.wait(1.0):
                try:
                    marked = {m.message_id for m in self.dovecot.contents()
                              if imap_marked(m, self.acknowledge, self.keyword)}
                    with engine.connect() as connection:
                        stored = {row.message_id for row in connection.execute(text(
                            "SELECT message_id FROM inbound_mail WHERE source = 'imap'"))}
                except Exception as exc:  # noqa: BLE001 - a busy database: next round
                    self.failures[type(exc).__name__] += 1
                    continue
                self.rounds += 1
                self.marked_seen |= marked
                self.early += sorted(marked - stored)
        finally:
            engine.dispose()


# --- the daemon ------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    """The child processes of ``pid``, from /proc (psutil is not at hand)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    """The process exists and is no zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def is_worker(pid: int) -> bool:
    try:
        return b"\0work\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class Serve:
    """``mailcase -c CONFIG serve`` as a subprocess, restarted at will."""

    def __init__(self, config: Path, port: int, logfile: TextIO) -> None:
        self.config = config
        self.port = port
        self.logfile = logfile
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exits: list[int] = []  # exit codes of serves that ended on their own
        self.workers_seen: set[int] = set()

    def start(self) -> None:
        self.starts += 1
        self.logfile.write(f"\n===== soak: serve start {self.starts} at "
                           f"{time.strftime('%H:%M:%S')} =====\n")
        self.logfile.flush()
        self.process = subprocess.Popen([str(MAILCASE), "-c", str(self.config), "serve"],
                                        stdin=subprocess.DEVNULL, stdout=self.logfile,
                                        stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def worker(self) -> int | None:
        """The processing child of the running serve, if it has one now."""
        if self.process is None or self.process.poll() is not None:
            return None
        for pid in children(self.pid):
            if is_worker(pid):
                self.workers_seen.add(pid)
                return pid
        return None

    def listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def wait_up(self, timeout: float) -> float:
        """Wait until serve listens and has its child; start it again if it ended on its
        own (the database down at its start, say). Returns the seconds waited."""
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                self.exits.append(self.process.returncode)
                log(f"serve exited by itself with {self.process.returncode}: "
                    f"{self.last_words()}; starting it again")
                time.sleep(1.0)
                self.start()
                continue
            if self.worker() is not None and self.listening():
                return time.monotonic() - started
            time.sleep(0.2)
        log(f"serve not up with its child after {timeout:.0f} s; going on")
        return time.monotonic() - started

    def last_words(self) -> str:
        """The last line serve wrote (its reason to exit)."""
        self.logfile.flush()
        lines = Path(self.logfile.name).read_text(errors="replace").strip().splitlines()
        return lines[-1][:300] if lines else "(nothing logged)"

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM and wait for a clean exit; its exit code (None: had to be killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log("serve did not stop within the timeout; killing it")
            self.kill()
            return None

    def reap_orphans(self, timeout: float = 40.0) -> list[int]:
        """Children of killed serves end by themselves when their wake-up pipe closes;
        any still alive after ``timeout`` are killed (only pids we saw as our children)."""
        deadline = time.monotonic() + timeout
        while left := [pid for pid in self.workers_seen if alive(pid) and is_worker(pid)]:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        for pid in left:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return left


# --- the databases ---------------------------------------------------------------------

class Database:
    """The soak's own database: a SQLite file (optionally on a tmpfs) or a PostgreSQL
    database created for the run."""

    def __init__(self, engine_name: str, folder: Path, full_volume: bool) -> None:
        self.engine_name = engine_name
        self.folder = folder
        self.mount: Path | None = None
        self.pg_name: str | None = None
        self.notes: list[str] = []
        if engine_name == "sqlite":
            location = folder
            if full_volume:
                location = self._mount_tmpfs(folder / "volume")
            self.url = f"sqlite:///{location / 'mailcase.db'}"
            self.read_url = self.url
        else:
            self.pg_name = f"soak_{os.getpid()}_{int(time.time())}"
            with self.admin() as connection:
                connection.execute(text(f'CREATE DATABASE "{self.pg_name}"'))
            self.url = f"postgresql://postgres@127.0.0.1:5432/{self.pg_name}"
            self.read_url = f"{PG_HOST}/{self.pg_name}"

    @contextlib.contextmanager
    def admin(self) -> Iterator[Any]:
        engine = create_engine(f"{PG_HOST}/postgres", isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def _mount_tmpfs(self, path: Path) -> Path:
        path.mkdir()
        if os.geteuid() != 0:
            self.notes.append("full volume: skipped (mounting a tmpfs needs root)")
            return self.folder
        done = subprocess.run([tool("mount"), "-t", "tmpfs", "-o", "size=48m,mode=0700", "tmpfs",
                               str(path)], capture_output=True, text=True, check=False)
        if done.returncode:
            self.notes.append(f"full volume: skipped (mount failed: {done.stderr.strip()})")
            return self.folder
        self.mount = path
        return path

    def engine(self) -> Engine:
        if self.engine_name == "sqlite":
            return create_engine(self.read_url, connect_args={"timeout": 30})
        return create_engine(self.read_url)

    def pending(self) -> tuple[int, int]:
        """Inbound mail and outbound mail still pending."""
        engine = self.engine()
        try:
            with engine.connect() as connection:
                inbound = connection.execute(text(
                    "SELECT count(*) FROM inbound_mail WHERE status = 'pending'")).scalar_one()
                outbound = connection.execute(text(
                    "SELECT count(*) FROM outbound_mail WHERE status = 'pending'")).scalar_one()
                return int(inbound), int(outbound)
        finally:
            engine.dispose()

    def close(self, keep: bool) -> None:
        if self.mount is not None:
            if keep:  # the tmpfs would vanish with the mount: copy the database out
                target = self.folder / "database-copy"
                shutil.copytree(self.mount, target, dirs_exist_ok=True)
                self.notes.append(f"the database on the tmpfs was copied to {target}")
            done = subprocess.run([tool("umount"), str(self.mount)], capture_output=True, text=True,
                                  check=False)
            if done.returncode:
                subprocess.run([tool("umount"), "-l", str(self.mount)], check=False)
        if self.pg_name is not None and not keep:
            with self.admin() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)'))


# --- faults ----------------------------------------------------------------------------

class Faults:
    """The faults of one run, each started by the kill loop and ended by a timer."""

    def __init__(self, args: argparse.Namespace, database: Database, sink: Sink) -> None:
        self.args = args
        self.database = database
        self.sink = sink
        self.done: list[str] = []
        self.skipped: list[str] = []
        self.timers: list[threading.Thread] = []
        self.filler: Path | None = None
        self.pg_blocked = False

    def plan(self, cycles: int) -> dict[int, str]:
        """Which cycle starts which fault."""
        wanted: list[str] = []
        if self.args.smarthost_down:
            wanted.append("smarthost down")
        if self.args.db_outage:
            if self.database.engine_name == "postgresql":
                wanted.append("postgresql outage")
            elif self.database.mount is not None:
                wanted.append("full volume")
            else:
                self.skipped.append("full volume (no tmpfs; see notes)")
        return {max(1, (n + 1) * cycles // (len(wanted) + 1)): what
                for n, what in enumerate(wanted)}

    def start(self, what: str) -> None:
        seconds = self.args.fault_seconds
        if what == "smarthost down":
            self.sink.down = True
            self._later(seconds, self._smarthost_back)
            self.done.append(f"smarthost answered 451 for {seconds:g} s")
        elif what == "postgresql outage":
            self._pg_outage(seconds)
        elif what == "full volume":
            self._fill(seconds)
        log(f"fault: {what}")

    def _later(self, seconds: float, action: Any) -> None:
        def run() -> None:
            time.sleep(seconds)
            action()
        thread = threading.Thread(target=run, daemon=True, name="fault timer")
        self.timers.append(thread)
        thread.start()

    def _smarthost_back(self) -> None:
        self.sink.down = False
        log("fault over: smarthost back")

    def _pg_outage(self, seconds: float) -> None:
        name = self.database.pg_name
        assert name is not None
        if self.args.pg_fault == "server":
            with self.database.admin() as connection:
                others = connection.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname IS NOT NULL "
                    "AND datname <> :ours AND pid <> pg_backend_pid()"),
                    {"ours": name}).scalar_one()
            clusters = sorted(p.name for p in Path("/etc/postgresql").glob("*")
                              if (p / "main").is_dir())
            if others or not clusters or not shutil.which("pg_ctlcluster"):
                reason = (f"{others} other client(s) connected" if others
                          else "no pg_ctlcluster or cluster")
                self.skipped.append(f"postgresql server restart ({reason}); "
                                    "cut off the soak's database instead")
            else:
                done = subprocess.run([tool("pg_ctlcluster"), clusters[-1], "main", "restart"],
                                      capture_output=True, text=True, check=False)
                if done.returncode == 0:
                    self.done.append(f"postgresql {clusters[-1]}/main restarted")
                    return
                self.skipped.append(f"postgresql server restart failed: {done.stderr.strip()}")
        with self.database.admin() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            self.pg_blocked = True
            cut = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": name}).scalar_one()
        self.done.append(f"postgresql database cut off for {seconds:g} s "
                         f"({cut} connections terminated, new ones refused)")
        self._later(seconds, self._pg_back)

    def _pg_back(self) -> None:
        if not self.pg_blocked:
            return
        name = self.database.pg_name
        with self.database.admin() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        self.pg_blocked = False
        log("fault over: postgresql database reachable again")

    def _fill(self, seconds: float) -> None:
        assert self.database.mount is not None
        # A WAL file that already has room takes commits on a full volume by overwriting
        # itself: truncate it first, so the next commit needs new space at once.
        connection = sqlite3.connect(self.database.mount / "mailcase.db", timeout=30)
        try:
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            connection.close()
        self.filler = self.database.mount / "filler"
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        written = 0
        try:
            for size in (1 << 20, 1 << 12, 1):
                block = b"\0" * size
                while True:
                    try:
                        written += os.write(fd, block)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        self.done.append(f"sqlite volume full for {seconds:g} s ({written >> 20} MiB filler; "
                         f"WAL {'truncated' if not busy else 'not truncated: busy'} first)")
        self._later(seconds, self._unfill)

    def _unfill(self) -> None:
        if self.filler is not None:
            with contextlib.suppress(FileNotFoundError):
                self.filler.unlink()
            self.filler = None
            log("fault over: volume has room again")

    def end(self) -> None:
        """Undo whatever is still in force (also after an error)."""
        self.sink.down = False
        self._unfill()
        if self.pg_blocked:
            self._pg_back()


# --- the run ---------------------------------------------------------------------------

def write_config(folder: Path, database_url: str, smtp_port: int, sink_port: int,
                 imap: dict[str, Any] | None = None) -> Path:
    """The keys of tests/support/servers.py write_config, with short retries; ``imap``:
    the keys of the support mailbox's [mailbox.imap] section."""
    config = folder / "mailcase.toml"
    imap_lines = "".join(
        f"{key} = {value if isinstance(value, int | float) else json.dumps(str(value))}\n"
        for key, value in (imap or {}).items())
    config.write_text(f"""\
[database]
url = "{database_url}"

[smtp]
host = "127.0.0.1"
port = {smtp_port}

[outbound]
transport = "smtp"
host = "127.0.0.1"
port = {sink_port}
tls = "none"
timeout = 3.0
retry_base_seconds = 1.0
retry_max_seconds = 4.0

[templates]
dir = "{ROOT / 'templates'}"

[tokens]
secret_file = "token-secret"

[processing]
retry_base_seconds = 1.0
retry_max_seconds = 4.0
poll_seconds = 1.0

[service]
shutdown_seconds = 10.0

[http]
enabled = false

[logging]
level = "INFO"

[[mailbox]]
address = "{SUPPORT}"
name = "Support"
""" + (f"\n[mailbox.imap]\n{imap_lines}" if imap else ""), encoding="utf-8")
    return config


@dataclass
class Verdict:
    """What the database and the sink say about what the sender was told."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


class Snapshot:
    """The database's rows and the sink's copies, indexed for the checks."""

    def __init__(self, engine: Engine, sink: Sink) -> None:
        with engine.connect() as connection:
            inbound = connection.execute(text(
                "SELECT id, message_id, status, case_id, opened_case, outcome, source "
                "FROM inbound_mail"
            )).all()
            messages = connection.execute(text(
                "SELECT message_id, case_id FROM messages WHERE direction = 'in'")).all()
            cases = connection.execute(text("SELECT supplied_email FROM cases")).all()
            self.outbound = connection.execute(text(
                "SELECT id, rcpt_to, message_id, status, kind, attempts, last_error "
                "FROM outbound_mail")).all()
        self.inbound: dict[str, list[Any]] = defaultdict(list)
        for row in inbound:
            self.inbound[row.message_id].append(row)
        self.messages: Counter[str] = Counter(row.message_id for row in messages)
        self.cases: Counter[str] = Counter(str(row.supplied_email).lower() for row in cases)
        self.acks: dict[str, list[Any]] = defaultdict(list)
        for row in self.outbound:
            if row.kind == "auto_response":
                self.acks[row.rcpt_to.lower()].append(row)
        with sink.lock:
            self.received = list(sink.received)
            self.sink_refused = sink.refused
        self.copies: Counter[str] = Counter(mid for mid, _, _ in self.received)
        self.reached: set[str] = {rcpt for _, rcpt, _ in self.received}


def check_mail(mail: Mail, seen: Snapshot, verdict: Verdict) -> None:
    """One acknowledged mail: stored once, processed once, threaded, acknowledged."""
    counts, problems = verdict.counts, verdict.problems
    rows = seen.inbound.get(mail.message_id, [])
    if not rows:
        counts["lost"] += 1
        problems.append(f"LOST: {mail.message_id} got 250 and is not stored")
        return
    if len(rows) > 1:
        counts["stored twice"] += 1
        problems.append(f"stored twice: {mail.message_id} ({len(rows)} rows)")
    row = rows[0]
    counts[f"status {row.status}"] += 1
    if row.status != "processed":
        problems.append(f"not processed: {mail.message_id} inbound={row.id} "
                        f"status={row.status} ({row.outcome})")
        return
    if seen.messages[mail.message_id] != 1:
        counts["processed twice"] += seen.messages[mail.message_id] > 1
        problems.append(f"{mail.message_id}: {seen.messages[mail.message_id]} messages rows")
    if mail.parent is not None:
        parent_rows = seen.inbound.get(mail.parent.message_id, [])
        parent_case = parent_rows[0].case_id if parent_rows else None
        if row.opened_case or row.case_id != parent_case:
            counts["misthreaded"] += 1
            problems.append(f"{mail.message_id}: reply on case {row.case_id}, its parent's "
                            f"is {parent_case}")
        return
    sender = mail.sender.lower()
    if seen.cases[sender] != 1 or not row.opened_case:
        counts["processed twice"] += seen.cases[sender] > 1
        problems.append(f"{mail.message_id}: {seen.cases[sender]} cases for its sender, "
                        f"opened_case={row.opened_case}")
    counts["outbound expected"] += 1
    acks = seen.acks.get(sender, [])
    if not acks:
        counts["not queued"] += 1
        problems.append(f"{mail.message_id}: no acknowledgement queued")
        return
    if len(acks) > 1:
        counts["processed twice"] += 1
        problems.append(f"{mail.message_id}: {len(acks)} acknowledgements queued")
    if sender in seen.reached:
        counts["delivered"] += 1
    else:
        problems.append(f"{mail.message_id}: acknowledgement {acks[0].message_id} never "
                        f"reached the sink (status {acks[0].status}, {acks[0].attempts} "
                        f"tries, {acks[0].last_error})")


def verify(channels: list[tuple[str, Sender]], seen: Snapshot,
           kills: list[tuple[float, str]], started: float) -> Verdict:
    """Each channel (SMTP, IMAP) checked mail by mail; a table row for each."""
    verdict = Verdict()
    domains = {sender.domain: name for name, sender in channels}
    twice_by: dict[str, int] = Counter()
    twice = {mid: n for mid, n in seen.copies.items() if n > 1}
    for mid in twice:
        rcpt = next(r for m, r, _ in seen.received if m == mid)
        owner = max((d for d in domains if rcpt.endswith(f".{d}")), key=len, default="")
        twice_by[domains.get(owner, "?")] += 1
    ours: set[str] = set()
    for name, sender in channels:
        part = Verdict()
        with sender.lock:
            mails = list(sender.mails)
        ours |= {m.message_id for m in mails}
        acked = [m for m in mails if m.acked]
        for mail in acked:
            check_mail(mail, seen, part)
        counts = part.counts
        sources = Counter(seen.inbound[m.message_id][0].source for m in acked
                          if seen.inbound.get(m.message_id))
        if wrong := {s: n for s, n in sources.items() if s != name}:
            part.problems.append(f"{name} mail stored with source {wrong}")
        verdict.rows.append({
            "channel": name, "sent": len(mails), "acknowledged": len(acked),
            "lost": counts["lost"], "processed twice": counts["processed twice"],
            "outbound expected": counts["outbound expected"],
            "delivered": counts["delivered"], "delivered twice": twice_by[name],
        })
        errors: Counter[str] = Counter()
        for mail in mails:
            errors.update(mail.errors)
        rejected = Counter(m.rejected for m in mails if m.rejected)
        never = sum(1 for m in mails if not m.acked and not m.rejected)
        unacked_stored = sum(1 for m in mails if not m.acked and m.message_id in seen.inbound)
        statuses = {k[7:]: v for k, v in counts.items() if k.startswith("status ")}
        verdict.notes += [
            f"{name}: new mails {sum(1 for m in mails if m.parent is None)}, replies "
            f"{sum(1 for m in mails if m.parent is not None)}; attempts "
            f"{sum(m.attempts for m in mails)}; answers before the ack: "
            f"{dict(errors.most_common())}",
            f"{name}: never acknowledged {never}, rejected 5xx {dict(rejected)}; stored, ack "
            f"lost in a crash, kept once after the re-send: {unacked_stored}",
            f"{name}: acknowledged mail by status {statuses}, by source {dict(sources)}; "
            f"stored twice {counts['stored twice']}; misthreaded replies "
            f"{counts['misthreaded']}; acknowledgements not queued {counts['not queued']}",
        ]
        verdict.problems += part.problems
    if strangers := [mid for mid in seen.inbound if mid not in ours]:
        verdict.problems.append(f"{len(strangers)} stored mails the soak never sent")
    verdict.notes.append(
        f"outbound rows {len(seen.outbound)} by status "
        f"{dict(Counter(row.status for row in seen.outbound))}; the sink took "
        f"{len(seen.received)} copies of {len(seen.copies)} Message-IDs and refused "
        f"{seen.sink_refused} RCPTs")
    for mid in twice:  # when each copy came, and the first kill after the first copy
        times = sorted(when for m, _, when in seen.received if m == mid)
        after = [(when, target) for when, target in kills if times[0] <= when <= times[-1]]
        kill = (f"; {after[0][1]} killed {after[0][0] - times[0]:.3f} s after the first copy"
                if after else "; no kill between the copies")
        verdict.notes.append(f"sent twice: {mid}, copies at "
                             f"{', '.join(f'{t - started:.1f}' for t in times)} s{kill}")
    return verdict


def check_mailbox(feeder: ImapFeeder, contents: list[Stored], acknowledge: str,
                  keyword: str, audit: MarkAudit, verdict: Verdict) -> None:
    """The IMAP mailbox after the drain, as README says mailcase leaves it: every
    appended mail marked once (keyword/seen: still in INBOX; move: in the processed
    folder; delete: gone), none left unmarked, none marked before it was stored."""
    with feeder.lock:
        appended = {m.message_id for m in feeder.mails if m.acked}
    where: dict[str, list[Stored]] = defaultdict(list)
    for stored in contents:
        where[stored.message_id].append(stored)
    unmarked = [s for s in contents if not imap_marked(s, acknowledge, keyword)]
    missing = sorted(mid for mid in appended if not where.get(mid)) if acknowledge in (
        "keyword", "seen") else []
    if acknowledge == "move":
        kept = Counter(s.message_id for s in contents if s.folder == PROCESSED_FOLDER)
        missing = sorted(mid for mid in appended if not kept[mid])
        extra = {mid: n for mid, n in kept.items() if n > 1}
    else:
        extra = {mid: len(found) for mid, found in where.items() if len(found) > 1}
    strangers = sorted(mid for mid in where if mid not in appended)
    deleted_left = sum(b"\\Deleted" in s.flags for s in contents if s.folder == "INBOX")
    verdict.notes.append(
        f"imap mailbox ({acknowledge}): {len(contents)} mails in "
        f"{dict(Counter(s.folder for s in contents))}; unmarked {len(unmarked)}; appended "
        f"but not found {len(missing)}; Message-IDs found more than once {len(extra)}; "
        f"\\Deleted left in INBOX {deleted_left}; mark audit: {audit.rounds} rounds saw "
        f"{len(audit.marked_seen)} marked, {len(audit.early)} marked before stored, "
        f"failed rounds {dict(audit.failures)}")
    verdict.problems += [f"imap: left unmarked: {s.message_id} uid {s.uid} {s.flags}"
                         for s in unmarked]
    verdict.problems += [f"imap: appended, not in the mailbox: {mid}" for mid in missing]
    verdict.problems += [f"imap: in the mailbox {n} times: {mid}" for mid, n in extra.items()]
    verdict.problems += [f"imap: in the mailbox, never appended: {mid}" for mid in strangers]
    verdict.problems += [f"imap: marked before it was stored: {mid}" for mid in audit.early]
    for row in verdict.rows:
        if row["channel"] == "imap":
            row["box unmarked"] = len(unmarked)
            row["box twice"] = len(extra)


def imap_log_figures(logfile: Path) -> str:
    """What the serve log says of its IMAP passes (a crash between commit and mark
    shows as mail found again and 'already stored')."""
    found = stored = again = failed = 0
    for line in logfile.read_text(errors="replace").splitlines():
        if "IMAP poll of" in line and " found, " in line:
            numbers = [int(w) for w in line.replace(",", " ").split()
                       if w.isdigit()][-3:]
            if len(numbers) == 3:
                found, stored, again = (found + numbers[0], stored + numbers[1],
                                        again + numbers[2])
        elif "IMAP poll of" in line and " failed " in line:
            failed += 1
    return (f"imap passes per serve.log: found {found}, stored {stored}, found again "
            f"(already stored: committed, mark lost in a kill) {again}; failed passes "
            f"{failed}")


class Soak:
    """One run: set up, kill cycle by cycle, drain, stop, verify, clean up."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.started = time.monotonic()
        self.folder = Path(tempfile.mkdtemp(prefix=f"mailcase-soak-{args.engine}-"))
        log(f"folder {self.folder} (seed {args.seed})")
        self.sink = Sink()
        self.sink.start()
        self.database = Database(args.engine, self.folder, full_volume=args.db_outage)
        self.faults = Faults(args, self.database, self.sink)
        port = listener_port(random.Random(args.seed + 2))
        self.dovecot: Mailbox | None = None
        self.feeder: ImapFeeder | None = None
        self.audit: MarkAudit | None = None
        imap: dict[str, Any] | None = None
        smtp_rate = args.rate
        if args.imap:
            self.folder.chmod(0o711)  # Dovecot's mail user must reach its home below it
            self.dovecot = start_mailbox(self.folder / "dovecot")
            imap = {"host": "127.0.0.1", "port": self.dovecot.port, "tls": "none",
                    "username": SUPPORT, "password_file": self.dovecot.password_file,
                    "folder": "INBOX", "acknowledge": args.imap_acknowledge,
                    "poll_seconds": 2.0, "timeout": 10.0}
            if args.imap_acknowledge == "move":
                imap["processed_folder"] = PROCESSED_FOLDER
                # mailcase does not create it: without it every pass fails at the first
                # mail's COPY (TRYCREATE) and nothing more is taken from the mailbox.
                self.dovecot.create_folder(PROCESSED_FOLDER)
            smtp_rate = args.rate * (1 - args.imap_share)
            self.feeder = ImapFeeder(self.dovecot, args.rate * args.imap_share,
                                     args.reply_share, random.Random(args.seed + 3),
                                     f"{os.getpid()}-imap")
            self.audit = MarkAudit(self.dovecot, self.database, args.imap_acknowledge,
                                   IMAP_KEYWORD)
            log(f"dovecot on 127.0.0.1:{self.dovecot.port}; IMAP {args.rate * args.imap_share:g}"
                f" mails/s, SMTP {smtp_rate:g} mails/s; acknowledge = {args.imap_acknowledge}")
        config = write_config(self.folder, self.database.url, port, self.sink.port, imap)
        self.logfile = (self.folder / "serve.log").open("a", encoding="utf-8")
        self.serve = Serve(config, port, self.logfile)
        self.sender = Sender(port, smtp_rate, args.reply_share, random.Random(args.seed + 1),
                             f"{os.getpid()}")
        self.kills: Counter[str] = Counter()
        self.timed_kills = 0  # serve kills aimed just after an IMAP APPEND
        self.kill_times: list[tuple[float, str]] = []
        self.waits: list[float] = []

    def run(self) -> int:
        failed = True
        try:
            self.serve.start()
            log(f"serve up in {self.serve.wait_up(60):.1f} s; sending {self.args.rate:g} "
                "mails/s")
            self.sender.start()
            if self.feeder is not None and self.audit is not None:
                self.feeder.start()
                self.audit.start()
            self.cycles()
            self.faults.end()
            drained = self.drain()
            code = self.serve.stop()
            orphans = self.serve.reap_orphans()
            engine = self.database.engine()
            channels: list[tuple[str, Sender]] = [("smtp", self.sender)]
            if self.feeder is not None:
                channels.append(("imap", self.feeder))
            try:
                verdict = verify(channels, Snapshot(engine, self.sink), self.kill_times,
                                 self.started)
            finally:
                engine.dispose()
            if self.dovecot is not None and self.feeder is not None and self.audit is not None:
                check_mailbox(self.feeder, self.dovecot.contents(), self.args.imap_acknowledge,
                              IMAP_KEYWORD, self.audit, verdict)
                verdict.notes += [
                    imap_log_figures(Path(self.logfile.name)),
                    f"serve kills timed just after an IMAP APPEND: {self.timed_kills}"]
            verdict.rows = [
                {"channel": row["channel"], "engine": self.args.engine,
                 "cycles": self.kills.total(),
                 "kills (serve/child)": f"{self.kills['serve']}/{self.kills['child']}",
                 **row, "elapsed s": f"{time.monotonic() - self.started:.0f}"}
                for row in verdict.rows]
            verdict.notes += [
                f"serve starts {self.serve.starts}, exits by itself {self.serve.exits}, final "
                f"stop exit code {code}; processing children seen "
                f"{len(self.serve.workers_seen)}, left alive at the end {orphans}",
                f"wait for serve and its child before a cycle: max {max(self.waits):.1f} s, "
                f"mean {sum(self.waits) / len(self.waits):.1f} s; drained: {drained}",
                *[f"fault: {d}" for d in self.faults.done],
                *[f"fault skipped: {s}" for s in self.faults.skipped],
                *self.database.notes,
            ]
            failed = bool(verdict.problems or not drained or orphans or code != 0
                          or any(row["delivered"] != row["outbound expected"]
                                 for row in verdict.rows))
            print_table(verdict)
        finally:
            self.cleanup(keep=failed or self.args.keep)
        return 1 if failed else 0

    def cycles(self) -> None:
        args, serve = self.args, self.serve
        plan = self.faults.plan(args.cycles)
        for cycle in range(1, args.cycles + 1):
            if time.monotonic() - self.started > args.max_seconds:
                log(f"time is up after {cycle - 1} cycles")
                return
            self.waits.append(serve.wait_up(60))
            if cycle in plan:
                self.faults.start(plan[cycle])
            time.sleep(self.rng.uniform(args.min_gap, args.max_gap))
            target = "child" if self.rng.random() < args.child_share else "serve"
            if target == "serve" and self.feeder is not None \
                    and self.rng.random() < args.imap_kill_share:
                # Into the IMAP pass the APPEND sets off: fetch, commit, mark.
                self.feeder.appended.clear()
                if self.feeder.appended.wait(5):
                    time.sleep(self.rng.uniform(0.0, 0.3))
                    self.timed_kills += 1
            worker = serve.worker() if target == "child" else None
            if worker is not None:
                self.kill_times.append((time.monotonic(), target))
                os.kill(worker, signal.SIGKILL)
            else:  # the serve, or the child between two lives: kill its parent instead
                target = "serve"
                self.kill_times.append((time.monotonic(), target))
                serve.kill()
                serve.start()
            self.kills[target] += 1
            with self.sender.lock:
                count, acked = len(self.sender.mails), sum(m.acked for m in self.sender.mails)
            imap = ""
            if self.feeder is not None:
                with self.feeder.lock:
                    imap = (f"; imap {len(self.feeder.mails)} made, "
                            f"{sum(m.acked for m in self.feeder.mails)} appended")
            log(f"cycle {cycle}: killed {target}; {count} sent, {acked} acknowledged{imap}")

    def drain(self) -> bool:
        """Stop new mail, get the rest acknowledged, wait until nothing is pending."""
        senders = [self.sender] + ([self.feeder] if self.feeder is not None else [])
        for sender in senders:
            sender.stop_generating()
        log("sending stopped; re-sending what was refused, then draining")
        self.waits.append(self.serve.wait_up(90))
        deadline = time.monotonic() + self.args.drain_seconds
        while any(s.outstanding() for s in senders) and time.monotonic() < deadline:
            time.sleep(0.5)
        for sender in senders:
            sender.stop()
        inbound = outbound = unmarked = -1
        while time.monotonic() < deadline:
            try:
                inbound, outbound = self.database.pending()
                unmarked = self.imap_unmarked()
            except Exception as exc:  # noqa: BLE001 - a busy database: look again
                log(f"counting pending mail failed: {exc}")
            if inbound == 0 and outbound == 0 and unmarked == 0:
                log("drained")
                return True
            time.sleep(1.0)
        log(f"NOT drained after {self.args.drain_seconds:g} s: {inbound} inbound, "
            f"{outbound} outbound pending, {unmarked} unmarked in the IMAP mailbox")
        return False

    def imap_unmarked(self) -> int:
        """Mail in the IMAP mailbox that mailcase has not marked yet (0 without IMAP)."""
        if self.dovecot is None:
            return 0
        return sum(not imap_marked(m, self.args.imap_acknowledge, IMAP_KEYWORD)
                   for m in self.dovecot.contents())

    def cleanup(self, keep: bool) -> None:
        self.faults.end()
        self.sender.stop_generating()
        self.sender.stop()
        if self.feeder is not None:
            self.feeder.stop_generating()
            self.feeder.stop()
        if self.audit is not None:
            self.audit.stop()
        self.serve.stop()
        self.serve.reap_orphans(timeout=0)
        self.sink.stop()
        if self.dovecot is not None:
            self.dovecot.stop()
        self.logfile.close()
        self.database.close(keep)
        if keep:
            log(f"kept {self.folder}" + (f" and database {self.database.pg_name}"
                                         if self.database.pg_name else ""))
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def print_table(verdict: Verdict) -> None:
    heads = list(dict.fromkeys(h for row in verdict.rows for h in row))
    table = [[str(row.get(h, "")) for h in heads] for row in verdict.rows]
    widths = [max([len(h)] + [len(cells[n]) for cells in table]) for n, h in enumerate(heads)]
    print()
    print("| " + " | ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cells in table:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    print()
    for note in verdict.notes:
        print(f"  {note}")
    if verdict.problems:
        print(f"\n{len(verdict.problems)} problem(s):")
        for problem in verdict.problems[:40]:
            print(f"  {problem}")
    sys.stdout.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cycles", type=int, default=12, help="kills (default 12)")
    parser.add_argument("--rate", type=float, default=8.0, help="new mails a second (8)")
    parser.add_argument("--reply-share", type=float, default=0.2,
                        help="share of new mail that replies to an earlier one (0.2)")
    parser.add_argument("--child-share", type=float, default=0.5,
                        help="share of kills aimed at the processing child (0.5)")
    parser.add_argument("--min-gap", type=float, default=1.0,
                        help="least seconds between the daemon being up and a kill (1)")
    parser.add_argument("--max-gap", type=float, default=5.0,
                        help="most seconds between the daemon being up and a kill (5)")
    parser.add_argument("--faults", action="store_true",
                        help="every fault below that the engine allows")
    parser.add_argument("--smarthost-down", action="store_true",
                        help="the sink answers 451 for --fault-seconds, then takes mail again")
    parser.add_argument("--db-outage", action="store_true",
                        help="PostgreSQL: an outage; SQLite: a full volume (a tmpfs, root only)")
    parser.add_argument("--pg-fault", choices=["database", "server"], default="database",
                        help="cut off the soak's database (default), or restart the whole "
                             "cluster when no one else is connected to it")
    parser.add_argument("--fault-seconds", type=float, default=10.0)
    parser.add_argument("--drain-seconds", type=float, default=150.0,
                        help="bound on the final drain (a killed child's outbox lease "
                             "runs 72 s)")
    parser.add_argument("--max-seconds", type=float, default=200.0,
                        help="no new cycle after this many seconds")
    parser.add_argument("--imap", action="store_true",
                        help="also feed a throwaway Dovecot's INBOX that the daemon polls")
    parser.add_argument("--imap-share", type=float, default=0.3,
                        help="share of --rate APPENDed over IMAP instead of sent by SMTP (0.3)")
    parser.add_argument("--imap-acknowledge", choices=["keyword", "seen", "move", "delete"],
                        default="keyword", help="the mailbox's acknowledge mode (keyword)")
    parser.add_argument("--imap-kill-share", type=float, default=0.5,
                        help="share of serve kills timed just after an APPEND (0.5)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true",
                        help="keep the folder and database (always kept after a failure)")
    args = parser.parse_args()
    if args.faults:
        args.smarthost_down = args.db_outage = True
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    if not MAILCASE.exists():
        parser.error(f"{MAILCASE} not found: run with the virtualenv's python")
    return Soak(args).run()


if __name__ == "__main__":
    sys.exit(main())
