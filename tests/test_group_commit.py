"""Group commit: concurrent SMTP sessions share transactions, each still answered only
after its own mail is committed; a failing batch costs no mail but its own."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, func, select

from mailcase.app import App
from mailcase.groupcommit import GroupCommit
from mailcase.intake import Accepted, Incoming
from mailcase.models import InboundMail
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
