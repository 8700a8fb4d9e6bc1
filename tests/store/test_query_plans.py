"""The queue claims are served by the partial indexes of pending mail, on both engines,
however much processed mail the tables hold (without them PostgreSQL walked the primary
key past every mail ever processed); the console's lists by the indexes of open cases
and of changes, however many closed cases there are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from mailcase.cases.finder import CaseFilter, Sort, list_query
from mailcase.outbound.outbox import claim_query as outbox_claim
from mailcase.pipeline.processor import claim_query
from mailcase.store import db

HISTORY = 20_000


def _series(postgres: bool) -> str:
    """A FROM item of the numbers 1 to HISTORY, as ``i``."""
    return (f"generate_series(1, {HISTORY}) AS i" if postgres else
            f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            f"WHERE i < {HISTORY}) SELECT i FROM n)")


def fill(engine: Engine) -> None:
    """Mostly processed and sent history, a few pending mails of each kind."""
    postgres = engine.dialect.name == "postgresql"
    series = _series(postgres)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO outbound_mail (kind, mail_from, rcpt_to, message_id, raw, status, "
            "attempts, next_attempt_at, deadline_at, created_at) SELECT 'ack', 's@x.org', "
            "'c' || i || '@x.org', '<m' || i || '@x.org>', 'x', "
            f"CASE WHEN i < {HISTORY - 50} THEN 'sent' ELSE 'pending' END, 0, "
            f"'2026-01-01 00:00:00', '2026-01-03 00:00:00', '2026-01-01 00:00:00' "
            f"FROM {series}"))
        connection.execute(text(
            "INSERT INTO inbound_mail (idempotency_key, source, rcpt_to, size, raw, "
            "received_at, status, attempts, next_attempt_at, skip_screening, opened_case) "
            "SELECT 'plan' || i, 'test', '[]', 1, 'x', '2026-01-01 00:00:00', "
            f"CASE WHEN i < {HISTORY - 50} THEN 'processed' ELSE 'pending' END, 0, "
            f"'2026-01-01 00:00:00', false, false FROM {series}"))
        connection.execute(text("ANALYZE"))


def test_the_claims_use_the_pending_indexes(database_url: str) -> None:
    """The processor's and the outbox sender's claims, as they run them."""
    engine = db.create(database_url)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        fill(engine)
        assert "ix_inbound_mail_pending" in plan_of(engine, claim_query(now))
        assert "ix_outbound_mail_pending" in plan_of(engine, outbox_claim(now, 50))
    finally:
        engine.dispose()


def fill_cases(engine: Engine) -> None:
    """Mostly closed cases, one in a hundred open, each changed at its own second."""
    postgres = engine.dialect.name == "postgresql"
    changed = ("timestamp '2026-01-01' + i * interval '1 second'" if postgres else
               "datetime('2026-01-01', '+' || i || ' seconds')")
    series = _series(postgres)
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO cases (id, number, subject, description, status, is_closed, "
            "priority, origin, mailbox, created_at, updated_at, is_closed_on_create, "
            "is_escalated, has_unread_comments_for_owner) SELECT i, i, 'Case ' || i, '', "
            "'Closed', i % 100 <> 0, 'Medium', 'Email', 's@x.org', '2026-01-01 00:00:00', "
            f"{changed}, false, false, false FROM " + series))
        connection.execute(text("ANALYZE"))


def test_the_console_lists_use_the_case_indexes(database_url: str) -> None:
    """Open cases newest first (every default view) and all cases by their last change
    (recently updated) read an index, not every case and then a sort."""
    engine = db.create(database_url)
    try:
        fill_cases(engine)
        unassigned = list_query(CaseFilter(unassigned=True, open_only=True), 51)
        assert "ix_cases_open_number" in plan_of(engine, unassigned)
        recent = plan_of(engine, list_query(CaseFilter(), 51, sort=Sort("updated")))
        assert "ix_cases_updated_at" in recent
        # The due times are looked up for the page afterwards, not joined to the list
        # (that made PostgreSQL sort all the cases for one page).
        assert "case_targets" not in recent
    finally:
        engine.dispose()


def plan_of(engine: Engine, query: Any) -> str:
    """The engine's plan for ``query`` with its parameters bound, as one line."""
    compiled = query.compile(engine)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            rows = connection.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
            return " ".join(row[0] for row in rows)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
        return " ".join(str(row[3]) for row in rows)
