"""Several clients, threads and instances at once, on SQLite and PostgreSQL: every mail is
stored and processed once, case numbers never repeat, and case rules hold under races."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from mailcase.app import App
from mailcase.cases.book import CaseBook
from mailcase.cases.errors import CaseError
from mailcase.cases.finder import CaseFilter
from mailcase.store import db, migrate
from mailcase.store.models import Case, InboundMail
from tests.support.servers import mail, running_daemon, send, wait_for

CLIENTS = 4
MAILS_EACH = 10


def numbers(app: App) -> list[int]:
    with app.sessions() as session:
        return list(session.scalars(select(Case.number).order_by(Case.number)))


def test_parallel_smtp_clients_each_get_one_case(app: App) -> None:
    """Four clients sending at once through the running daemon: every 250 is a stored mail,
    and every mail becomes exactly one case with its own number."""

    def client(index: int) -> int:
        for number in range(MAILS_EACH):
            send(port, mail(message_id=f"<c{index}-{number}@customer.org>",
                            subject=f"client {index} mail {number}"))
        return MAILS_EACH

    total = CLIENTS * MAILS_EACH
    with running_daemon(app, workers=True) as daemon:
        port = daemon.port
        with ThreadPoolExecutor(CLIENTS) as pool:
            assert sum(pool.map(client, range(CLIENTS))) == total
        wait_for(lambda: len(numbers(app)) == total, timeout=20, what=f"{total} cases")
    assert numbers(app) == list(range(1000, 1000 + total))
    with app.sessions() as session:
        statuses = Counter(session.scalars(select(InboundMail.status)))
    assert statuses == {"processed": total}


def test_two_instances_share_the_queue(make_app: Callable[..., App]) -> None:
    """Two instances draining one database at once process each mail once (SKIP LOCKED on
    PostgreSQL, the write lock on SQLite)."""
    first, second = make_app(), make_app()
    total = 40
    for number in range(total):
        first.intake.accept(mail(message_id=f"<q{number}@customer.org>").as_bytes(),
                            mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                            source="test")
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda app: app.processor.drain(), (first, second)))
    assert sum(outcomes, Counter()) == {"processed": total}
    assert numbers(first) == list(range(1000, 1000 + total))


def test_a_change_waits_for_a_concurrent_close(app: App) -> None:
    """A status change racing a close waits for it and is then refused: a case is never
    left 'Working' and closed at once."""
    app.intake.accept(mail(message_id="<race@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    closed, release = threading.Event(), threading.Event()

    def close() -> None:
        with app.sessions.begin() as session:
            book = CaseBook(session, app.settings.cases, app.clock())
            book.close(book.get(1000), "fixed", "agent@example.com")
            closed.set()
            release.wait(10)

    errors: list[str] = []

    def change() -> None:
        desk = app.desk()
        try:
            desk.update(1000, status="Working", priority=None, owner=None,
                        author=desk.author(None))
        except CaseError as exc:
            errors.append(str(exc))

    closer = threading.Thread(target=close)
    closer.start()
    assert closed.wait(10)
    changer = threading.Thread(target=change)
    changer.start()
    changer.join(0.5)
    assert changer.is_alive(), "the change did not wait for the close to commit"
    release.set()
    closer.join(10)
    changer.join(10)
    assert errors == ["case 00001000 is closed; reopen it first"]
    with app.sessions() as session:
        case = session.scalars(select(Case)).one()
        assert (case.status, case.is_closed) == ("Closed", True)


def test_readers_are_not_blocked_by_a_writer(app: App) -> None:
    """`cases list` and `cases show` answer while another transaction holds the write
    lock (SQLite) or the case's row lock (PostgreSQL)."""
    app.intake.accept(mail(message_id="<read@customer.org>").as_bytes(),
                      mail_from="ann@customer.org", rcpt_to=["support@example.com"],
                      source="test")
    app.processor.drain()
    desk = app.desk()
    with app.sessions.begin() as session:
        CaseBook(session, app.settings.cases, app.clock()).get(1000)  # locks it
        with ThreadPoolExecutor(1) as pool:
            listed = pool.submit(desk.list, CaseFilter(), 10)
            shown = pool.submit(desk.show, 1000)
            assert [c["number"] for c in listed.result(timeout=3)] == ["00001000"]
            assert shown.result(timeout=3)["subject"] == "Printer on fire"


def test_instances_starting_together_create_the_schema_once(empty_database_url: str) -> None:
    """Two instances starting at once on an empty database: one creates the schema, the
    other waits and finds it; neither fails."""
    engines = [db.create(empty_database_url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(migrate.ensure_current, engines))
        assert migrate.current(engines[0]) == migrate.head()
        with engines[0].connect() as connection:
            versions = connection.exec_driver_sql("SELECT count(*) FROM alembic_version")
            assert versions.scalar() == 1
            counters = connection.exec_driver_sql("SELECT count(*) FROM counters")
            assert counters.scalar() == 1
    finally:
        for engine in engines:
            engine.dispose()
