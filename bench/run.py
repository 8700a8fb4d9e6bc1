"""Run the whole benchmark and print one table: ``python -m bench.run``.

Every machine-dependent figure stands beside a baseline measured in the same run — a
bare aiosmtpd server for SMTP, a loop of bare durable commits for the database — and
the ratio between them, because absolute numbers drift between runs and machines.
See bench/README.md for what each row measures and the latest results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, text

from bench import api, console, load, search, seed
from bench.corpus import generate, write_mbox

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    measure: str
    engine: str
    value: float
    unit: str
    baseline: str = ""
    ratio: float | None = None
    target: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        ratio = "" if self.ratio is None else f"{self.ratio:.2f}×"
        met = {True: "yes", False: "**no**", None: ""}[self.met]
        return [self.measure, self.engine, f"{self.value:,.1f} {self.unit}", self.baseline,
                ratio, self.target, met]


def ms(result: load.LoadResult, share: float) -> float:
    """The ``share`` percentile of ``result``'s latencies, in milliseconds."""
    return result.percentile(share) * 1000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values


class Bench:
    """The run's scratch space, servers and settings."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rows: list[Row] = []
        self.databases: list[str] = []

    # -- servers ------------------------------------------------------------------

    @contextmanager
    def bare(self, module: str = "bench.bare") -> Iterator[int]:
        """A baseline server in its own process on a free port: ``bench.bare``, the bare
        aiosmtpd (also the outbound relay mailcase sends its answers to), or
        ``bench.bare_api``, FastAPI's hello-world."""
        port = free_port()
        process = subprocess.Popen([sys.executable, "-m", module, str(port)], cwd=ROOT,
                                   stdout=subprocess.DEVNULL)
        try:
            wait_port(port)
            yield port
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)

    def database(self, engine: str, name: str) -> str:
        """A new empty database for one measure."""
        if engine == "sqlite":
            return f"sqlite:///{self.workdir / (name + '.db')}"
        database = f"mailcase_bench_{name}_{os.getpid()}"
        admin = create_engine(self.args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}"'))
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        admin.dispose()
        self.databases.append(database)
        return str(self.args.pg_url).rsplit("/", 1)[0] + "/" + database

    def drop_databases(self) -> None:
        if not self.databases:
            return
        admin = create_engine(self.args.pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            for database in self.databases:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    def config(self, name: str, url: str, relay_port: int,
               extra: str = "") -> tuple[Path, int]:
        """A config file for mailcase on ``url`` sending its mail to the relay, with the
        ``extra`` sections given."""
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        port = free_port()
        path = folder / "mailcase.toml"
        path.write_text(f"""
[database]
url = "{url}"
[smtp]
host = "127.0.0.1"
port = {port}
[[mailbox]]
address = "support@example.com"
name = "Support"
[outbound]
transport = "smtp"
host = "127.0.0.1"
port = {relay_port}
tls = "none"
from = "support@example.com"
[templates]
dir = "{ROOT / 'templates'}"
[tokens]
secret_file = "{folder / 'token-secret'}"
[logging]
level = "WARNING"
{extra}""", encoding="utf-8")
        return path, port

    @contextmanager
    def daemon(self, config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
        """``mailcase serve`` as operators run it, in its own process."""
        process = subprocess.Popen(
            [sys.executable, "-m", "mailcase", "-c", str(config), "serve"], cwd=config.parent,
            stdout=subprocess.DEVNULL, stderr=open(config.parent / "serve.log", "ab"))  # noqa: SIM115
        try:
            wait_port(port, timeout=60)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)

    # -- measures -----------------------------------------------------------------

    def run(self) -> None:
        args = self.args
        corpus = {seed_: generate(args.messages, seed=seed_) for seed_ in (1, 2, 3)}
        with self.bare() as bare_port:
            bare_new = load.run(bare_port, corpus[1], concurrency=args.concurrency, reuse=False)
            bare_reuse = load.run(bare_port, corpus[2], concurrency=args.concurrency,
                                  reuse=True)
            self.rows.append(Row("SMTP accept, bare aiosmtpd, new connection each", "-",
                                 bare_new.rate, "msg/s", "", None, "(baseline)"))
            self.rows.append(Row("SMTP accept, bare aiosmtpd, reused connections", "-",
                                 bare_reuse.rate, "msg/s", "", None, "(baseline)"))
            for engine in args.engines:
                if "accept" not in args.skip:
                    self.accept_and_e2e(engine, bare_port, corpus, bare_new, bare_reuse)
                if args.scale_cases and "accept" not in args.skip:
                    self.scale(engine, bare_port, corpus[1])
                if "import" not in args.skip:
                    self.import_mbox(engine)
                if "fanout" not in args.skip:
                    self.fanout(engine)
                if "wake" not in args.skip:
                    self.wake(engine)
                if args.search_cases and "search" not in args.skip:
                    self.search(engine)
                if "api" not in args.skip:
                    self.api_read(engine, bare_port)
                if args.console_cases and "console" not in args.skip:
                    self.console_pages(engine, bare_port)
            if "bigmail" not in args.skip:
                self.big_mail(bare_port)

    def commit_baseline(self, engine: str) -> float:
        """Bare durable commits per second, one small row each, one thread."""
        url = self.database(engine, f"commits_{engine}")
        db = create_engine(url)
        with db.begin() as connection:
            if engine == "sqlite":
                connection.exec_driver_sql("PRAGMA journal_mode=WAL")
            connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        count = 500
        started = time.perf_counter()
        with db.connect() as connection:
            if engine == "sqlite":
                connection.exec_driver_sql("PRAGMA synchronous=FULL")
            for n in range(count):
                connection.execute(text("INSERT INTO t (id, body) VALUES (:i, :b)"),
                                   {"i": n, "b": "x" * 1000})
                connection.commit()
        rate = count / (time.perf_counter() - started)
        db.dispose()
        return rate

    def accept_and_e2e(self, engine: str, bare_port: int, corpus: dict[int, list[bytes]],
                       bare_new: load.LoadResult, bare_reuse: load.LoadResult) -> None:
        args = self.args
        commits = self.commit_baseline(engine)
        self.rows.append(Row("durable commits, one thread", engine, commits, "commit/s", "", None,
                             "(baseline)"))
        url = self.database(engine, f"accept_{engine}")
        config, port = self.config(f"accept_{engine}", url, bare_port)
        target = 0.7 if engine == "sqlite" else 0.5
        with self.daemon(config, port) as process:
            new = load.run(port, corpus[1], concurrency=args.concurrency, reuse=False)
            done = wait_processed(url, len(corpus[1]), timeout=args.timeout)
            ratio = new.rate / bare_new.rate
            self.rows.append(Row("SMTP accept, new connection each", engine, new.rate, "msg/s",
                                 f"{bare_new.rate:,.0f} msg/s bare", ratio,
                                 f"≥ {target} × bare", ratio >= target))
            self.rows.append(Row("DATA→250 p50 / p99 at full load", engine,
                                 new.percentile(0.99) * 1000, "ms p99",
                                 f"p50 {new.percentile(0.5) * 1000:.1f} ms", None, "", None))
            e2e = len(corpus[1]) / (done - new.started)
            e2e_target = 500 if engine == "sqlite" else None
            self.rows.append(Row("end to end: sent → case/comment + ack queued", engine, e2e,
                                 "msg/s", f"{commits:,.0f} commit/s", e2e / commits,
                                 f"≥ {e2e_target} msg/s" if e2e_target else "",
                                 e2e >= e2e_target if e2e_target else None))
            reuse = load.run(port, corpus[2], concurrency=args.concurrency, reuse=True)
            wait_processed(url, len(corpus[1]) + len(corpus[2]), timeout=args.timeout)
            self.rows.append(Row("SMTP accept, reused connections", engine, reuse.rate,
                                 "msg/s", f"{bare_reuse.rate:,.0f} msg/s bare",
                                 reuse.rate / bare_reuse.rate, "", None))
            half = load.run(port, corpus[3], concurrency=args.concurrency, reuse=False,
                            rate=max(new.rate, 1.0) / 2)
            wait_processed(url, sum(len(c) for c in corpus.values()), timeout=args.timeout)
            p99 = half.percentile(0.99) * 1000
            self.rows.append(Row("DATA→250 p99 at half the peak rate", engine, p99, "ms",
                                 f"p50 {half.percentile(0.5) * 1000:.1f} ms", None, "< 25 ms",
                                 p99 < 25))
            for role, pid in (("listener", process.pid),
                              *(("processing", child) for child in children(process.pid))):
                rss = memory(pid)
                self.rows.append(Row(f"{role} process RSS after the run (peak)", engine,
                                     rss["VmRSS"] / 2**20, "MB",
                                     f"peak {rss['VmHWM'] / 2**20:,.0f} MB", None, "< 150 MB",
                                     rss["VmRSS"] < 150 * 2**20))
            unprocessed = not_processed(url)
            if unprocessed:
                self.rows.append(Row(f"mail not processed into a case or comment ({unprocessed})",
                                     engine, sum(unprocessed.values()), "msg", "", None, "0",
                                     False))
            refused = new.refused + reuse.refused + half.refused
            if refused:
                self.rows.append(Row("mail refused (not 250) during the run", engine, refused,
                                     "msg", "", None, "0", False))
        self._last_empty = (new.rate, e2e)

    def scale(self, engine: str, bare_port: int, mails: list[bytes]) -> None:
        args = self.args
        url = self.database(engine, f"scale_{engine}")
        config, port = self.config(f"scale_{engine}", url, bare_port)
        upgrade(config)
        started = time.perf_counter()
        db = create_engine(url)
        seed.seed(db, args.scale_cases)
        db.dispose()
        seeded = time.perf_counter() - started
        empty_accept, empty_e2e = self._last_empty
        with self.daemon(config, port):
            new = load.run(port, mails, concurrency=args.concurrency, reuse=False)
            done = wait_processed(url, len(mails), timeout=args.timeout,
                                  after_id=args.scale_cases)
        e2e = len(mails) / (done - new.started)
        for what, value, empty in (("SMTP accept", new.rate, empty_accept),
                                   ("end to end", e2e, empty_e2e)):
            ratio = value / empty
            self.rows.append(Row(f"{what} with {args.scale_cases:,} cases (seeded in "
                                 f"{seeded:.0f} s)", engine, value, "msg/s",
                                 f"{empty:,.0f} msg/s empty", ratio, "within 10 %",
                                 ratio >= 0.9))

    def import_mbox(self, engine: str) -> None:
        mbox = self.workdir / "import.mbox"
        if not mbox.exists():
            write_mbox(mbox, generate(self.args.import_messages, seed=4))
        url = self.database(engine, f"import_{engine}")
        config, _ = self.config(f"import_{engine}", url, free_port())
        upgrade(config)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mailcase", "-c", str(config), "import",
                        str(mbox)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        rate = self.args.import_messages / (time.perf_counter() - started)
        self.rows.append(Row(f"import of a {self.args.import_messages:,}-mail mbox", engine,
                             rate, "msg/s", "", None, "≥ 1,000 msg/s", rate >= 1000))

    def fanout(self, engine: str) -> None:
        """One agent reply on a case with 20 collaborators, until all 21 mails arrived."""
        from mailcase import config as mailcase_config  # noqa: PLC0415 - only this measure
        from mailcase.app import App  # noqa: PLC0415
        from mailcase.cases.book import CaseBook  # noqa: PLC0415
        from mailcase.store.models import InboundMail  # noqa: PLC0415

        with Counting() as sink:
            url = self.database(engine, f"fanout_{engine}")
            path, _ = self.config(f"fanout_{engine}", url, sink.port)
            app = App.build(mailcase_config.load(path), create_secret=True)
            app.ensure_schema()
            raw = generate(1, seed=5)[0]
            accepted = app.intake.accept(raw, mail_from="user@customer0.example",
                                         rcpt_to=["support@example.com"], source="bench")
            app.processor.drain()
            with app.sessions.begin() as session:
                inbound = session.get(InboundMail, accepted.id)
                assert inbound is not None and inbound.case is not None
                number = inbound.case.number
                book = CaseBook(session, app.settings.cases, app.clock())
                case = book.get(number)
                for n in range(20):
                    book.add_collaborator(case, f"colleague{n}@customer0.example", "", None)
            app.sender.drain()
            sink.reset()
            desk = app.desk()
            started = time.perf_counter()
            queued = desk.reply(number, "We have replaced the printer.", desk.author(None))
            app.sender.drain()
            sink.wait(queued, timeout=30)
            elapsed = (sink.last - started) * 1000
            app.close()
        self.rows.append(Row(f"fan-out: one reply to {queued} people, until all at the sink",
                             engine, elapsed, "ms", "", None, "< 150 ms", elapsed < 150))

    def wake(self, engine: str, replies: int = 5) -> None:
        """An agent's ``mailcase cases reply`` against a running ``serve`` (its next look
        at the outbox up to ``processing.poll_seconds``, 15 s, away): from the command's
        start until the answer reached the relay, median of ``replies``. The baseline is
        the command itself (interpreter start, commit, exit) in the same runs."""
        with Counting() as sink:
            url = self.database(engine, f"wake_{engine}")
            config, port = self.config(f"wake_{engine}", url, sink.port)
            upgrade(config)
            with self.daemon(config, port):
                with smtplib.SMTP("127.0.0.1", port) as client:
                    client.sendmail("user@customer0.example", ["support@example.com"],
                                    generate(1, seed=6)[0])
                sink.wait(1, timeout=60)  # the acknowledgement: the case exists
                number = _single_case_number(config)
                commands, totals = [], []
                for n in range(replies):
                    sink.reset()
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "mailcase", "-c", str(config),
                                    "cases", "reply", number, "--body", f"Answer {n}."],
                                   check=True, stdout=subprocess.DEVNULL)
                    commands.append(time.perf_counter() - started)
                    sink.wait(1, timeout=60)
                    totals.append(sink.last - started)
        command, total = statistics.median(commands) * 1000, statistics.median(totals) * 1000
        self.rows.append(Row("agent reply from the command line until at the relay", engine,
                             total, "ms", f"{command:,.0f} ms the command itself",
                             total / command, "< command + 1,000 ms",
                             total < command + 1000))

    def search(self, engine: str) -> None:
        """``Desk.search`` on a store of ``--search-cases`` cases (bench/search.py):
        p50 and p99 of the query mix and of each kind, beside the first page of
        ``Desk.list`` on the same store."""
        from mailcase import config as mailcase_config  # noqa: PLC0415 - only this measure
        from mailcase.app import App  # noqa: PLC0415
        from mailcase.cases.finder import CaseFilter  # noqa: PLC0415
        from mailcase.store import db  # noqa: PLC0415

        args = self.args
        url = self.database(engine, f"search_{engine}")
        path, _ = self.config(f"search_{engine}", url, free_port())
        engine_ = db.create(url)
        store = search.Store(random.Random(22))
        started = time.perf_counter()

        def progress(done: int) -> None:
            if done % 100_000 == 0:
                print(f"search {engine}: {done:,} cases written in "
                      f"{time.perf_counter() - started:,.0f} s", file=sys.stderr)

        inserted, indexed = search.seed(engine_, args.search_cases, args.search_comments,
                                        store, progress)
        engine_.dispose()
        app = App.build(mailcase_config.load(path), create_secret=True)
        desk = app.desk()
        for _kind, query in search.queries(store, args.search_cases, 2):  # warm-up, not counted
            desk.search(query)
        took: dict[str, list[float]] = {kind: [] for kind in search.QUERY_KINDS}
        found: dict[str, int] = dict.fromkeys(search.QUERY_KINDS, 0)
        for kind, query in search.queries(store, args.search_cases,
                                                 args.search_queries):
            took[kind] += search.timed(lambda query=query: desk.search(query))  # type: ignore[misc]
            found[kind] += bool(desk.search(query, limit=1).rows)
        listing = search.timed(lambda: desk.list(CaseFilter(), 20), 50)
        app.close()
        every = [seconds for kind in took.values() for seconds in kind]
        base = statistics.median(listing) * 1000
        texts = args.search_cases * (1 + args.search_comments)
        self.rows.append(Row(
            f"search p50 / p99, {args.search_cases:,} cases, {texts:,} texts (written in "
            f"{inserted:,.0f} s, indexed by 0008 in {indexed:,.0f} s)", engine,
            search.percentile(every, 0.99) * 1000, "ms p99",
            f"p50 {statistics.median(every) * 1000:,.1f} ms; cases list p50 {base:,.1f} ms",
            statistics.median(every) * 1000 / base, "p99 < 1,000 ms",
            search.percentile(every, 0.99) < 1.0))
        for kind, seconds in took.items():
            self.rows.append(Row(
                f"… search for {kind} ({found[kind]} of {len(seconds)} found cases)", engine,
                search.percentile(seconds, 0.99) * 1000, "ms p99",
                f"p50 {statistics.median(seconds) * 1000:,.1f} ms", None, "", None))

    def api_read(self, engine: str, relay_port: int) -> None:
        """``GET /api/v1/cases/{number}`` of a case with a dozen comments among
        ``--api-cases`` others, from ``serve`` with the API on, against FastAPI's bare
        hello-world measured just before by the same clients: all of them at once for
        the rate, then one alone for the latency of a request that waits for no other."""
        args = self.args
        config, port, api_port = self.door_config(engine, relay_port, "api")
        number = api.prepare(config, args.api_cases)
        key = subprocess.run([sys.executable, "-m", "mailcase", "-c", str(config), "api-keys",
                              "create", "bench", "--scope", "read"], check=True, cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
        alone = args.api_seconds / 3
        with self.bare("bench.bare_api") as bare_port:
            bare = api.run(bare_port, "/hello", seconds=args.api_seconds,
                           concurrency=args.concurrency)
            bare_one = api.run(bare_port, "/hello", seconds=alone, concurrency=1)
        path = f"/api/v1/cases/{number:08d}"
        with self.daemon(config, port):
            wait_port(api_port)
            shown = api.check(api_port, path, key)
            served = api.run(api_port, path, seconds=args.api_seconds,
                             concurrency=args.concurrency, key=key)
            one = api.run(api_port, path, seconds=alone, concurrency=1, key=key)

        clients = f"{args.concurrency} clients"
        self.rows += [
            Row(f"API GET, bare FastAPI hello-world on uvicorn, {clients}", engine, bare.rate,
                "req/s", f"p50 {ms(bare, 0.5):.1f} ms, p99 {ms(bare, 0.99):.1f} ms", None,
                "(baseline)"),
            Row(f"API GET /cases/{{n}}, {clients}: {shown.comments} comments, "
                f"{shown.size / 1024:.0f} KB of JSON, among {args.api_cases:,} cases", engine,
                served.rate, "req/s", f"{bare.rate:,.0f} req/s bare",
                served.rate / bare.rate if bare.rate else None, "(no target)"),
            Row(f"API GET /cases/{{n}} latency p50 / p99, {clients}", engine, ms(served, 0.99),
                "ms p99", f"p50 {ms(served, 0.5):.1f} ms", None, "(no target)"),
            Row("API GET /cases/{n} latency, one client alone", engine, ms(one, 0.5),
                "ms p50", f"p99 {ms(one, 0.99):.1f} ms; bare p50 {ms(bare_one, 0.5):.1f} ms",
                None, "(no target)"),
        ]
        refused = bare.refused + bare_one.refused + served.refused + one.refused
        if refused:
            self.rows.append(Row("API requests not answered 200 (bare and mailcase)", engine,
                                 refused, "req", "", None, "0", False))

    def console_pages(self, engine: str, relay_port: int) -> None:
        """The console's pages (bench/console.py) on ``--console-cases`` cases, each
        fetched by one client alone for ``--console-seconds``, beside FastAPI's bare
        hello-world fetched the same way in the same run."""
        args = self.args
        config, port, console_port = self.door_config(engine, relay_port, "console")
        number = api.prepare(config, args.console_cases)
        cookie, opened = console.open_work(config, args.console_cases)
        with self.bare("bench.bare_api") as bare_port:
            bare = api.run(bare_port, "/hello", seconds=args.console_seconds, concurrency=1)

        self.rows.append(Row("Console, bare FastAPI hello-world, one client", engine,
                             ms(bare, 0.99), "ms p99", f"p50 {ms(bare, 0.5):.1f} ms", None,
                             "(baseline)"))
        pages = (*console.PAGES, ("a case with a dozen comments", f"/cases/{number}"))
        with self.daemon(config, port):
            wait_port(console_port)
            for name, path in pages:
                api.check_page(console_port, path, cookie)
                served = api.run(console_port, path, seconds=args.console_seconds,
                                 concurrency=1, cookie=cookie)
                answered = served.sent > 0  # none: the first answer took all the time
                self.rows.append(Row(
                    f"Console page: {name}, {args.console_cases:,} cases ({opened:,} open)",
                    engine, ms(served, 0.99) if answered else args.console_seconds * 1000,
                    "ms p99" if answered else "ms or more: no answer within",
                    f"p50 {ms(served, 0.5):.1f} ms" if answered else "",
                    ms(served, 0.5) / ms(bare, 0.5) if answered else None, "p99 < 100 ms",
                    answered and ms(served, 0.99) < 100 and not served.refused))

    def door_config(self, engine: str, relay_port: int,
                    door: str) -> tuple[Path, int, int]:
        """A fresh database and a config for ``serve`` with the HTTP ``door`` (the
        section: ``api``, ``console``) on a free port: the config, the SMTP port and the
        door's port."""
        url = self.database(engine, f"{door}_{engine}")
        door_port = free_port()
        config, port = self.config(f"{door}_{engine}", url, relay_port, extra=f"""
[{door}]
enabled = true
host = "127.0.0.1"
port = {door_port}
""")
        return config, port, door_port

    def big_mail(self, bare_port: int) -> None:
        """Peak memory of the daemon while it accepts and processes one large mail."""
        url = self.database("sqlite", "bigmail")
        config, port = self.config("bigmail", url, bare_port)
        message = EmailMessage()
        message["From"] = "Ann <ann@customer.example>"
        message["To"] = "support@example.com"
        message["Subject"] = "The whole log"
        message["Message-ID"] = "<big@customer.example>"
        message.set_content("The log is attached.")
        message.add_attachment(os.urandom(self.args.big_mail_bytes * 3 // 4 - 4096),
                               maintype="application", subtype="octet-stream",
                               filename="server.log")
        raw = message.as_bytes()
        with self.daemon(config, port) as process:
            time.sleep(2.0)
            pids = {"listener": process.pid}
            pids.update(("processing", pid) for pid in children(process.pid))
            before = {role: memory(pid)["VmRSS"] for role, pid in pids.items()}
            with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
                client.sendmail("ann@customer.example", ["support@example.com"], raw)
            wait_processed(url, 1, timeout=self.args.timeout)
            peaks = {role: memory(pid)["VmHWM"] for role, pid in pids.items()}
        for role in pids:
            growth = (peaks[role] - before[role]) / len(raw)
            self.rows.append(Row(
                f"peak RSS growth of the {role} process for one {len(raw) / 2**20:.1f} MB mail",
                "sqlite", (peaks[role] - before[role]) / 2**20, "MB",
                f"{before[role] / 2**20:,.0f} MB before", growth, "< 4 × the mail", growth < 4))


class Counting:
    """An in-process aiosmtpd sink that counts mail and notes when the last arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self.last = 0.0
        self.lock = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        with self.lock:
            self.count += 1
            self.last = time.perf_counter()
            self.lock.notify_all()
        return "250 OK"

    def reset(self) -> None:
        with self.lock:
            self.count = 0

    def wait(self, count: int, timeout: float) -> None:
        with self.lock:
            if not self.lock.wait_for(lambda: self.count >= count, timeout):
                raise RuntimeError(f"the sink got {self.count} of {count} mails")

    def __enter__(self) -> Counting:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


def _single_case_number(config: Path) -> str:
    """The number of the one case on the database ``config`` names, as the CLI lists it."""
    listed = subprocess.run([sys.executable, "-m", "mailcase", "-c", str(config), "cases",
                             "list", "--json"], check=True, capture_output=True, text=True)
    [case] = json.loads(listed.stdout)
    return str(case["number"])


def children(pid: int) -> list[int]:
    """The processes ``pid`` started (serve's processing child)."""
    command = ["ps", "--ppid", str(pid), "-o", "pid="]  # procps, as on every Linux
    listed = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    return [int(line) for line in listed.split()]


def not_processed(url: str) -> dict[str, int]:
    """Inbound mail that ended other than processed (dropped, parked), by status: the
    end-to-end figure counts only if this is empty."""
    db = create_engine(url)
    try:
        with db.connect() as connection:
            rows = connection.execute(text(
                "SELECT status, count(*) FROM inbound_mail WHERE status <> 'processed' "
                "GROUP BY status")).all()
    finally:
        db.dispose()
    return {status: count for status, count in rows}


def upgrade(config: Path) -> None:
    """Create the schema of a new database, as an operator would."""
    subprocess.run([sys.executable, "-m", "mailcase", "-c", str(config), "db", "upgrade"],
                   check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


def wait_processed(url: str, expected: int, timeout: float, after_id: int = 0,
                   clock: Callable[[], float] = time.monotonic) -> float:
    """Wait until ``expected`` inbound mails (those with ids above ``after_id``, the
    seeded history) are stored and none is pending; the time (monotonic) when that
    was first seen. Both counts are index lookups, so watching costs the machine
    nothing however large the history is."""
    db = create_engine(url)
    deadline = clock() + timeout
    try:
        while clock() < deadline:
            with db.connect() as connection:
                stored = connection.execute(text(
                    "SELECT count(*) FROM inbound_mail WHERE id > :after"),
                    {"after": after_id}).scalar()
                pending = connection.execute(text(
                    "SELECT count(*) FROM inbound_mail WHERE status = 'pending'")).scalar()
            if (stored or 0) >= expected and pending == 0:
                return clock()
            time.sleep(0.02)
    finally:
        db.dispose()
    raise RuntimeError(f"{expected} mails were not processed within {timeout} s")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return (f"{os.cpu_count()} cores ({cpu}), {memory_kb / 2**20:.0f} GiB, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def table(rows: list[Row]) -> str:
    headers = ["measure", "engine", "result", "baseline (same run)", "ratio", "target", "met"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--messages", type=int, default=3000,
                        help="mails per SMTP measure (default 3000)")
    parser.add_argument("--import-messages", type=int, default=10_000)
    parser.add_argument("--scale-cases", type=int, default=1_000_000,
                        help="cases seeded for the scale measure (0 skips it)")
    parser.add_argument("--search-cases", type=int, default=1_000_000,
                        help="cases written for the search measure (0 skips it)")
    parser.add_argument("--search-comments", type=int, default=3,
                        help="comments of each case for the search measure (default 3)")
    parser.add_argument("--search-queries", type=int, default=30,
                        help="queries of each kind timed by the search measure")
    parser.add_argument("--concurrency", type=int, default=8, help="SMTP client processes")
    parser.add_argument("--engines", type=lambda s: s.split(","), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_ADMIN_URL,
                        help="a PostgreSQL server where databases may be created")
    parser.add_argument("--big-mail-bytes", type=int, default=25 * 10**6 - 100_000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--api-cases", type=int, default=10_000,
                        help="cases seeded beside the one the API measure reads")
    parser.add_argument("--console-cases", type=int, default=1_000_000,
                        help="cases in the store of the console measure (0 skips it)")
    parser.add_argument("--console-seconds", type=float, default=8.0,
                        help="seconds each console page is fetched")
    parser.add_argument("--api-seconds", type=float, default=15.0,
                        help="how long the HTTP clients read, for mailcase and the bare app")
    parser.add_argument("--skip", type=lambda s: s.split(","), default=[],
                        help="leave out measures: accept (with end to end and scale), import, "
                             "fanout, wake, search, console, bigmail (comma-separated)")
    parser.add_argument("--output", type=Path, help="also write the table (Markdown) here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse(argv)
    with tempfile.TemporaryDirectory(prefix="mailcase-bench-") as scratch:
        bench = Bench(args, Path(scratch))
        failure = None
        try:
            bench.run()
        except Exception as exc:  # noqa: BLE001 - the rows measured so far are still printed
            failure = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        finally:
            bench.drop_databases()
    report = (f"mailcase benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}; "
              f"{args.messages} mails per SMTP measure from {args.concurrency} client "
              f"processes on the same machine\n\n{table(bench.rows)}\n")
    if failure:
        report += f"\nStopped early, the rows above are all that was measured: {failure}\n"
    print(report)
    if args.output:
        args.output.write_text(report, encoding="utf-8")
    if failure:
        raise SystemExit(1)
    return bench.rows


if __name__ == "__main__":
    main()
