"""Group commit: concurrent SMTP sessions share transactions, each still answered only
after its own mail is committed; a failing batch costs no mail but its own."""

from __future__ import annotations

import asyncio
import smtplib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from mailcase.app import App
from mailcase.intake.accept import Accepted, Incoming
from mailcase.intake.groupcommit import GroupCommit
from mailcase.store.models import InboundMail
from tests.support.servers import mail, running_daemon


def data_reply(port: int, raw: bytes) -> str:
    """The server's reply to one mail's DATA, e.g. "250 2.0.0 Queued as 17"."""
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        client.mail("ann@customer.org")
        client.rcpt("support@example.com")
        code, text = client.data(raw)
    return f"{code} {text.decode()}"


def stored(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(InboundMail)) or 0)


def test_concurrent_sessions_share_commits_and_each_250_is_stored(app: App) -> None:
    """Sixteen clients at once while the writer is slowed: every 250 names a stored mail,
    and the 64 mails took fewer transactions than mails (batches formed)."""
    commits: list[int] = []
    lock = threading.Lock()

    def count(_connection: object) -> None:
        with lock:
            commits.append(1)

    def slow_batch(original: object) -> object:
        def wrapper(mails: Sequence[Incoming], *, source: str) -> list[Accepted | Exception]:
            threading.Event().wait(0.02)  # a slow disk: sessions pile up meanwhile
            return original(mails, source=source)  # type: ignore[operator]
        return wrapper

    app.intake.accept_batch = slow_batch(app.intake.accept_batch)  # type: ignore[method-assign]
    with running_daemon(app) as daemon:
        event.listen(app.engine, "commit", count)
        try:
            def client(index: int) -> list[str]:
                return [data_reply(daemon.port, mail(message_id=f"<gc{index}-{n}@customer.org>")
                                   .as_bytes()) for n in range(4)]
            with ThreadPoolExecutor(16) as pool:
                replies = [r for rs in pool.map(client, range(16)) for r in rs]
        finally:
            event.remove(app.engine, "commit", count)
    assert all(reply.startswith("250") for reply in replies), replies
    ids = {int(reply.rsplit(" ", 1)[1]) for reply in replies}
    assert len(ids) == 64 and stored(app) == 64
    assert len(commits) < 64


def test_a_failing_batch_is_committed_one_by_one(app: App) -> None:
    """When a batch fails as a whole, each mail is tried alone: the bad one gets its
    error (451 for its session), the others are stored."""
    original = app.intake.accept_batch

    def picky(mails: Sequence[Incoming], *, source: str) -> list[Accepted | Exception]:
        if any(m.raw.startswith(b"poison") for m in mails):
            raise RuntimeError("the database refused this batch")
        return original(mails, source=source)

    app.intake.accept_batch = picky  # type: ignore[method-assign]
    group = GroupCommit(app.intake)
    group._changed.acquire()  # hold the writer until every mail is queued

    async def main() -> list[Accepted | BaseException]:
        tasks = [asyncio.ensure_future(group.accept(raw, "a@customer.org", ["to@example.com"]))
                 for raw in (mail(message_id="<ok1@customer.org>").as_bytes(), b"poison\r\n",
                             mail(message_id="<ok2@customer.org>").as_bytes())]
        await asyncio.sleep(0.05)
        group._changed.release()
        return await asyncio.gather(*tasks, return_exceptions=True)

    try:
        results = asyncio.run(main())
    finally:
        group.close(timeout=10)
    assert isinstance(results[0], Accepted) and isinstance(results[2], Accepted)
    assert isinstance(results[1], RuntimeError)
    assert stored(app) == 2


def test_mail_over_the_limit_in_a_batch_is_refused_alone(make_app: object) -> None:
    """A too-large mail in a batch is refused (552) without failing the others."""
    app = make_app(smtp={"max_message_size": 2000})  # type: ignore[operator]
    results = app.intake.accept_batch(
        [Incoming(mail(message_id="<small@customer.org>").as_bytes(), "a@b.org", []),
         Incoming(b"x" * 5000, "a@b.org", [])], source="test")
    assert isinstance(results[0], Accepted)
    assert type(results[1]).__name__ == "TooLarge"
    assert stored(app) == 1


@pytest.mark.parametrize("count", [1, 3])
def test_close_commits_what_is_queued(app: App, count: int) -> None:
    """Stopping the writer still commits and answers every mail already queued."""
    group = GroupCommit(app.intake)

    async def main() -> list[Accepted]:
        tasks = [asyncio.ensure_future(group.accept(
            mail(message_id=f"<close{n}@customer.org>").as_bytes(), "a@customer.org",
            ["support@example.com"])) for n in range(count)]
        await asyncio.sleep(0)
        await asyncio.to_thread(group.close, 10)
        return list(await asyncio.gather(*tasks))

    assert len(asyncio.run(main())) == count
    assert stored(app) == count


def run_accepts(group: GroupCommit, raws: list[bytes]) -> list[Accepted | BaseException]:
    async def main() -> list[Accepted | BaseException]:
        return await asyncio.gather(*(group.accept(raw, "a@customer.org", ["to@example.com"])
                                      for raw in raws), return_exceptions=True)
    return asyncio.run(main())


def test_a_locked_database_fails_the_whole_batch_at_once(app: App) -> None:
    """The database is locked or down: every waiting session hears 451 after one try,
    not after one timeout per mail."""
    calls: list[int] = []

    def locked(mails: Sequence[Incoming], *, source: str) -> list[Accepted | Exception]:
        calls.append(len(mails))
        raise OperationalError("INSERT", None, Exception("database is locked"))

    app.intake.accept_batch = locked  # type: ignore[method-assign]
    group = GroupCommit(app.intake)
    group._changed.acquire()  # queue all three before the writer looks
    try:
        raws = [mail(message_id=f"<locked{n}@customer.org>").as_bytes() for n in range(3)]

        async def main() -> list[Accepted | BaseException]:
            tasks = [asyncio.ensure_future(group.accept(raw, "a@customer.org", ["t@x.org"]))
                     for raw in raws]
            await asyncio.sleep(0.05)
            group._changed.release()
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = asyncio.run(main())
    finally:
        group.close(timeout=10)
    assert all(isinstance(r, OperationalError) for r in results)
    assert calls == [3]


def test_the_writer_survives_a_bug_and_keeps_answering(app: App) -> None:
    """An unexpected error in the writer answers that batch's sessions with an error
    (451) and the writer goes on: later mail is stored, nobody hangs."""
    original = app.intake.accept_batch
    broken = [True]

    def flaky(mails: Sequence[Incoming], *, source: str) -> list[Accepted | Exception]:
        if broken[0]:
            broken[0] = False
            return []  # a bug: fewer results than mails
        return original(mails, source=source)

    app.intake.accept_batch = flaky  # type: ignore[method-assign]
    group = GroupCommit(app.intake)
    try:
        [first] = run_accepts(group, [mail(message_id="<bug1@customer.org>").as_bytes()])
        [second] = run_accepts(group, [mail(message_id="<bug2@customer.org>").as_bytes()])
    finally:
        group.close(timeout=10)
    assert isinstance(first, ValueError)
    assert isinstance(second, Accepted) and stored(app) == 1


def test_the_gate_gives_up_after_the_busy_timeout(app: App) -> None:
    """A processing transaction that never ends (a stopped process) cannot hang the
    intake: after the gate's timeout the commit fails as a locked database would."""
    gate = app.intake.gate
    if gate.path is None:
        assert app.engine.dialect.name == "postgresql"  # row locks: no gate needed
        return
    gate.timeout = 0.3
    with gate.turn():  # what a stuck processor would hold
        started = time.monotonic()
        with pytest.raises(OperationalError):
            app.intake.accept(mail(message_id="<stuck@customer.org>").as_bytes(),
                              mail_from="a@customer.org", rcpt_to=[], source="test")
        assert time.monotonic() - started < 5
    app.intake.accept(mail(message_id="<unstuck@customer.org>").as_bytes(),
                      mail_from="a@customer.org", rcpt_to=[], source="test")
    assert stored(app) == 1
    database = Path(str(app.engine.url.database))
    for gate_file in (gate.path, gate.path.with_name(gate.path.name + "-turn")):
        assert gate_file.stat().st_mode & 0o777 == database.stat().st_mode & 0o666
