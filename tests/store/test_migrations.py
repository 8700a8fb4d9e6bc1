"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import insert

from mailcase.cases.search import search
from mailcase.store import db, migrate
from mailcase.store.models import Base, Case, Comment


def test_migrations_match_the_models(database_url: str) -> None:
    """After `db upgrade` there is nothing left for autogenerate to add or change (the
    search index, which the models cannot describe, aside)."""
    engine = db.create(database_url)
    try:
        assert migrate.current(engine) == migrate.head()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts=migrate.COMPARE_OPTIONS)
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_serve_refuses_a_database_behind_the_code(database_url: str) -> None:
    """A database at an older revision is not silently migrated: the operator is told."""
    engine = db.create(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000'")
        try:
            migrate.ensure_current(engine)
        except migrate.SchemaBehind as exc:
            assert "mailcase db upgrade" in str(exc)
        else:
            raise AssertionError("ensure_current accepted an old schema")
    finally:
        engine.dispose()


def test_upgrade_from_the_first_release_keeps_the_mail(empty_database_url: str) -> None:
    """A database made by the first release (0001) with mail in it upgrades to the head:
    the mail is still there and the new columns and tables start empty."""
    engine = db.create(empty_database_url)
    try:
        assert migrate.upgrade(engine, "0001") == (None, "0001")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO inbound_mail (idempotency_key, source, rcpt_to, size, raw, "
                "received_at, status, attempts, next_attempt_at, skip_screening, opened_case) "
                "VALUES ('k1', 'smtp', '[]', 3, 'abc', '2026-01-01 00:00:00', 'parked', 5, "
                "'2026-01-01 00:00:00', false, false)"
            )
        assert migrate.upgrade(engine) == ("0001", migrate.head())
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT idempotency_key, status, quarantined_at FROM inbound_mail").all()
            polls = connection.exec_driver_sql("SELECT count(*) FROM mailbox_polls").scalar()
        assert [tuple(row) for row in rows] == [("k1", "parked", None)]
        assert polls == 0
    finally:
        engine.dispose()


def test_downgrade_to_the_first_release_and_back_with_mail_in_it(database_url: str) -> None:
    """With parked mail referenced by other tables, 0002 goes down and up again without
    a table rebuild that foreign keys would refuse; the mail survives both ways."""
    engine = db.create(database_url)
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO inbound_mail (idempotency_key, source, rcpt_to, size, raw, "
                "received_at, status, attempts, next_attempt_at, skip_screening, opened_case) "
                "VALUES ('kd', 'imap', '[]', 3, 'abc', '2026-01-01 00:00:00', 'parked', 5, "
                "'2026-01-01 00:00:00', false, false)"
            )
            inbound_id = connection.exec_driver_sql(
                "SELECT id FROM inbound_mail WHERE idempotency_key = 'kd'").scalar()
            connection.exec_driver_sql(
                "INSERT INTO bounces (inbound_id, recipient, permanent, created_at) "
                f"VALUES ({inbound_id}, 'x@example.com', true, '2026-01-01 00:00:00')"
            )
        with engine.begin() as connection:
            command.downgrade(migrate._config(connection), "0001")
        assert migrate.current(engine) == "0001"
        assert migrate.upgrade(engine) == ("0001", migrate.head())
        with engine.connect() as connection:
            assert connection.exec_driver_sql(
                "SELECT count(*) FROM inbound_mail WHERE idempotency_key = 'kd'").scalar() == 1
    finally:
        engine.dispose()


def test_the_search_migration_indexes_what_is_already_there(empty_database_url: str) -> None:
    """Cases and comments written before 0008 are found by search after the upgrade,
    and the triggers keep up with what comes after it."""
    engine = db.create(empty_database_url)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    try:
        migrate.upgrade(engine, "0007")
        with engine.begin() as connection:
            connection.execute(insert(Case.__table__).values(
                id=1, number=1000, subject="Kiln cracked", description="", status="New",
                mailbox="support@example.com", supplied_email="ann@customer.org",
                created_at=when, updated_at=when))
            connection.execute(insert(Comment.__table__).values(
                case_id=1, body="Glaze everywhere.", author_kind="contact", public=True,
                created_at=when))
        migrate.upgrade(engine)
        sessions = db.session_factory(engine)
        with sessions.begin() as session:
            session.add(Comment(case_id=1, body="Sent a new kiln.", author_kind="agent",
                                public=False, created_at=when))
        with sessions() as session:
            found = {query: [row["number"] for row in search(session, query).rows]
                     for query in ("kiln", "glaze", "ann@customer.org", "new kiln")}
    finally:
        engine.dispose()
    assert found == {query: ["00001000"] for query in found}
