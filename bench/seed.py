"""Fill a database with a large history before a measure: the "1M cases" scale test.

Set-based SQL (a recursive CTE on SQLite, generate_series on PostgreSQL) writes the
cases, their contacts and one stored message each — the rows the threading lookups
search — plus the processed inbound mail and the sent answer of each (the history the
queue claims must not wade through), in seconds, and moves the case-number counter
past them.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

CONTACTS_PER_CASE = 10  # one contact for every ten old cases


def seed(engine: Engine, cases: int) -> None:
    """Add ``cases`` closed cases with contacts and messages (an empty schema expected)."""
    contacts = max(1, cases // CONTACTS_PER_CASE)
    postgres = engine.dialect.name == "postgresql"

    def numbers(upto: int) -> str:
        if postgres:
            return f"SELECT generate_series(1, {upto}) AS i"
        return (f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                f"WHERE i < {upto}) SELECT i FROM n")

    when = "'2025-01-01 00:00:00'"
    false = "false" if postgres else "0"
    true = "true" if postgres else "1"
    with engine.begin() as connection:
        connection.execute(text(
            f"INSERT INTO contacts (id, email, name, created_at) SELECT i, "
            f"'old' || i || '@customer' || (i % 1000) || '.example', 'Old Customer', {when} "
            f"FROM ({numbers(contacts)}) AS s"))
        connection.execute(text(
            "INSERT INTO cases (id, number, subject, description, status, is_closed, "
            "priority, origin, mailbox, supplied_email, contact_id, created_at, updated_at, "
            "closed_at, is_closed_on_create, is_escalated, has_unread_comments_for_owner) "
            f"SELECT i, i, 'Old case ' || i, 'An old question', 'Closed', {true}, 'Medium', "
            f"'Email', 'support@example.com', 'old' || (1 + i % {contacts}) || '@customer' || "
            f"((1 + i % {contacts}) % 1000) || '.example', 1 + i % {contacts}, {when}, {when}, "
            f"{when}, {false}, {false}, {false} FROM ({numbers(cases)}) AS s"))
        connection.execute(text(
            "INSERT INTO messages (id, case_id, direction, message_id, from_addr, to_addrs, "
            "cc_addrs, subject, created_at) SELECT i, i, 'in', '<old-' || i || "
            "'@customer.example>', 'old' || (1 + i % " + str(contacts) + ") || "
            "'@customer.example', 'support@example.com', '', 'Old case ' || i, "
            f"{when} FROM ({numbers(cases)}) AS s"))
        connection.execute(text(
            "INSERT INTO inbound_mail (id, idempotency_key, source, rcpt_to, size, raw, "
            "received_at, status, attempts, next_attempt_at, skip_screening, case_id, "
            "opened_case) SELECT i, 'old-' || i, 'smtp', '[]', 1, 'x', "
            f"{when}, 'processed', 1, {when}, {false}, i, {true} FROM ({numbers(cases)}) AS s"))
        connection.execute(text(
            "INSERT INTO outbound_mail (id, case_id, kind, mail_from, rcpt_to, message_id, "
            "raw, status, attempts, next_attempt_at, deadline_at, created_at, sent_at) "
            "SELECT i, i, 'acknowledgement', 'support@example.com', 'old' || i || "
            f"'@customer.example', '<ack-' || i || '@example.com>', 'x', 'sent', 1, {when}, "
            f"{when}, {when}, {when} FROM ({numbers(cases)}) AS s"))
        connection.execute(text("UPDATE counters SET value = :n WHERE name = 'case_number'"),
                           {"n": cases})
        if postgres:
            for table in ("contacts", "cases", "messages", "inbound_mail", "outbound_mail"):
                connection.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"))
    # A settled database, as one that grew over years would be: on PostgreSQL the
    # autovacuum of a million fresh rows would otherwise run during the measure.
    settle = "VACUUM ANALYZE" if postgres else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(settle))
