"""Full-text search: an index of every case's subject, description and sender and of
every comment's text and author, kept by triggers; existing cases and comments indexed.

One index row (a *document*) per case and per comment, keyed by ``doc``: minus the
case's id for the case itself, the comment's id for a comment. The row holds no case
id: a search finds a comment's case through ``comments.case_id``, so a merge moving
comments to another case (one bulk UPDATE) needs nothing from the index.

The database keeps the index itself, in the transaction of the change: triggers on
``cases`` (insert, delete, an update of subject, description or supplied_email) and on
``comments`` (insert, delete, an update of body or author_email) write it, whoever
writes the tables — the ORM, bulk Core inserts, plain SQL. On SQLite, a migration that
rebuilds ``cases`` or ``comments`` (Alembic's batch mode copies and drops the table, and
its triggers with it) must create these triggers again.

What is indexed, the same on both engines: words are runs of letters and digits
(other characters separate them), case-folded and with accents removed (PostgreSQL:
when the ``unaccent`` extension can be created); the first 200,000 characters of a
text; a sender address as two opaque words, ``xa`` + the hex of the lower-cased address
and ``xd`` + the hex of its domain, so an address or a domain matches exactly.

SQLite: an FTS5 table without content of its own (``content=''``): the text stays in
``cases`` and ``comments``; a change deletes the old words by giving the old values.
PostgreSQL: a table of ``tsvector`` with a GIN index, built with the text search
configuration ``mailcase_search`` (``simple``, no stemming, plus ``unaccent``); subject
weighted A, text B, sender D.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 09:00:00
"""

import logging
from typing import NamedTuple

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

TEXT_MAX = 200_000  # characters of one text that are indexed



class Source(NamedTuple):
    """A table whose rows are documents: SQL for each index column ({row} is NEW, OLD
    or the table), and the columns whose change re-indexes a row."""

    table: str
    doc: str
    subject: str
    body: str
    sender: str
    watched: str

    def of(self, row: str) -> tuple[str, str, str, str]:
        """The doc, subject, body and sender of ``row``."""
        return (self.doc.format(row=row), self.subject.format(row=row),
                self.body.format(row=row), self.sender.format(row=row))


SOURCES = (
    Source("cases", "-{row}.id", "{row}.subject", "{row}.description", "{row}.supplied_email",
           "subject, description, supplied_email"),
    Source("comments", "{row}.id", "''", "{row}.body", "{row}.author_email",
           "body, author_email"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for source in SOURCES:
            op.execute(f"DROP TRIGGER IF EXISTS search_{source.table} ON {source.table}")
            op.execute(f"DROP FUNCTION IF EXISTS mailcase_search_{source.table}()")
        op.execute("DROP TABLE IF EXISTS search_index")
        op.execute("DROP FUNCTION IF EXISTS mailcase_search_vector(text, text, text)")
        op.execute("DROP FUNCTION IF EXISTS mailcase_search_sender(text)")
        op.execute("DROP FUNCTION IF EXISTS mailcase_search_words(text)")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS mailcase_search")
        # unaccent stays: other users of the database may rely on it.
        return
    for source in SOURCES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS search_{source.table}_{event}")
    op.execute("DROP TABLE IF EXISTS search_index")


# -- SQLite: FTS5 -------------------------------------------------------------------


def _sqlite_sender(address: str) -> str:
    """The sender's two words from ``address`` (an SQL expression), '' without an @."""
    email = f"lower(coalesce({address}, ''))"
    domain = f"substr({email}, instr({email}, '@') + 1)"
    return (f"CASE WHEN instr({email}, '@') > 0 THEN 'xa' || lower(hex({email})) || "
            f"' xd' || lower(hex({domain})) ELSE '' END")


def _sqlite_values(source: Source, row: str) -> str:
    """The index columns of one row (``row``: NEW, OLD, or the table itself)."""
    doc, subject, body, sender = source.of(row)
    return f"{doc}, {subject}, substr({body}, 1, {TEXT_MAX}), {_sqlite_sender(sender)}"


def _upgrade_sqlite() -> None:
    op.execute("CREATE VIRTUAL TABLE search_index USING fts5(subject, body, sender, "
               "content='', tokenize='unicode61 remove_diacritics 2')")
    columns = "search_index (rowid, subject, body, sender)"
    # Without content of its own, FTS5 forgets a row's words when told them again.
    removal = "search_index (search_index, rowid, subject, body, sender)"
    for source in SOURCES:
        table = source.table
        add = f"INSERT INTO {columns} VALUES ({_sqlite_values(source, 'NEW')});"
        remove = f"INSERT INTO {removal} VALUES ('delete', {_sqlite_values(source, 'OLD')});"
        op.execute(f"CREATE TRIGGER search_{table}_insert AFTER INSERT ON {table} "
                   f"BEGIN {add} END")
        op.execute(f"CREATE TRIGGER search_{table}_update AFTER UPDATE OF {source.watched} "
                   f"ON {table} BEGIN {remove} {add} END")
        op.execute(f"CREATE TRIGGER search_{table}_delete AFTER DELETE ON {table} "
                   f"BEGIN {remove} END")
        op.execute(f"INSERT INTO {columns} SELECT {_sqlite_values(source, table)} "
                   f"FROM {table}")


# -- PostgreSQL: tsvector and GIN ---------------------------------------------------

_WORD_TYPES = ("asciiword, asciihword, hword_asciipart, word, hword, hword_part, numword, "
               "numhword, hword_numpart")

# ASCII punctuation becomes space before parsing, so PostgreSQL's parser sees words as
# FTS5's tokenizer does (it would otherwise keep addresses, hosts and paths whole).
_FUNCTIONS = (
    f"""CREATE FUNCTION mailcase_search_words(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT regexp_replace(left(coalesce($1, ''), {TEXT_MAX}), '[!-/:-@\\[-`{{-~]+', ' ',
                              'g') $$""",
    """CREATE FUNCTION mailcase_search_sender(text) RETURNS text
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CASE WHEN strpos(email, '@') > 0
            THEN 'xa' || encode(convert_to(email, 'UTF8'), 'hex') || ' xd'
                 || encode(convert_to(substr(email, strpos(email, '@') + 1), 'UTF8'), 'hex')
            ELSE '' END
        FROM (SELECT lower(coalesce($1, '')) AS email) AS given $$""",
    """CREATE FUNCTION mailcase_search_vector(subject text, body text, sender text)
        RETURNS tsvector LANGUAGE sql STABLE PARALLEL SAFE AS $$
        SELECT setweight(to_tsvector('mailcase_search', mailcase_search_words(subject)), 'A')
            || setweight(to_tsvector('mailcase_search', mailcase_search_words(body)), 'B')
            || setweight(to_tsvector('mailcase_search', mailcase_search_sender(sender)), 'D')
        $$""",
)


def _postgresql_trigger(source: Source) -> tuple[str, str]:
    """The trigger function and trigger that keep ``source``'s documents."""
    table = source.table
    doc, subject, body, sender = source.of("NEW")
    function = f"""CREATE FUNCTION mailcase_search_{table}() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                DELETE FROM search_index WHERE doc = {source.of("OLD")[0]};
                RETURN NULL;
            END IF;
            INSERT INTO search_index (doc, vector)
                VALUES ({doc}, mailcase_search_vector({subject}, {body}, {sender}))
                ON CONFLICT (doc) DO UPDATE SET vector = EXCLUDED.vector;
            RETURN NULL;
        END $$"""
    trigger = (f"CREATE TRIGGER search_{table} AFTER INSERT OR DELETE OR UPDATE OF "
               f"{source.watched} ON {table} FOR EACH ROW "
               f"EXECUTE FUNCTION mailcase_search_{table}()")
    return function, trigger


def _unaccent() -> bool:
    """Create the unaccent extension if the server has it and we may; whether it is there."""
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
    except DBAPIError as exc:
        log.warning("search will not fold accents: the unaccent extension cannot be "
                    "created (%s)", " ".join(str(exc.orig).split()))
        return False
    return True


def _upgrade_postgresql() -> None:
    op.execute("CREATE TEXT SEARCH CONFIGURATION mailcase_search (COPY = pg_catalog.simple)")
    if _unaccent():
        op.execute(f"ALTER TEXT SEARCH CONFIGURATION mailcase_search ALTER MAPPING FOR "
                   f"{_WORD_TYPES} WITH unaccent, simple")
    for function in _FUNCTIONS:
        op.execute(function)
    op.execute("CREATE TABLE search_index (doc bigint PRIMARY KEY, vector tsvector NOT NULL)")
    for source in SOURCES:
        for statement in _postgresql_trigger(source):
            op.execute(statement)
        doc, subject, body, sender = source.of(source.table)
        op.execute(f"INSERT INTO search_index (doc, vector) SELECT {doc}, "
                   f"mailcase_search_vector({subject}, {body}, {sender}) FROM {source.table}")
    op.execute("CREATE INDEX ix_search_index_vector ON search_index USING gin (vector)")
