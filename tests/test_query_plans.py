"""The queue claims are served by the partial indexes of pending mail, on both engines,
however much processed mail the tables hold (without them PostgreSQL walked the primary
key past every mail ever processed)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, text

from mailcase import db
from mailcase.pipeline.processor import claim_query

HISTORY = 20_000


def fill(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    series = (f"generate_series(1, {HISTORY}) AS i" if postgres else
              f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
              f"WHERE i < {HISTORY}) SELECT i FROM n)")
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO inbound_mail (idempotency_key, source, rcpt_to, size, raw, "
            "received_at, status, attempts, next_attempt_at, skip_screening, opened_case) "
            "SELECT 'plan' || i, 'test', '[]', 1, 'x', '2026-01-01 00:00:00', "
            f"CASE WHEN i < {HISTORY - 50} THEN 'processed' ELSE 'pending' END, 0, "
            f"'2026-01-01 00:00:00', false, false FROM {series}"))
        connection.execute(text("ANALYZE"))


def test_the_processor_claim_uses_the_pending_index(database_url: str) -> None:
    engine = db.create(database_url)
    try:
        fill(engine)
        query = claim_query(datetime(2026, 6, 1, tzinfo=UTC))
        compiled = query.compile(engine)
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                sql = str(compiled)
                params = compiled.params
                plan = " ".join(row[0] for row in connection.exec_driver_sql(
                    "EXPLAIN " + sql, params if isinstance(params, dict) else tuple(params)))
            else:
                plan = " ".join(str(row[3]) for row in connection.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + str(compiled),
                    tuple(compiled.params[name] for name in compiled.positiontup or ())))
    finally:
        engine.dispose()
    assert "ix_inbound_mail_pending" in plan, plan
