"""Schema migrations with Alembic: bring a database to the current schema, or say it is behind.

``mailcase db upgrade`` runs them; ``serve`` creates a brand-new database itself but
refuses to start on one that is merely behind, so upgrades stay an operator's decision.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from mailcase.store import db

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database exists but is older than this version of mailcase."""


# One number for every mailcase: instances starting at once on an empty PostgreSQL
# database take turns creating the schema instead of colliding on alembic_version.
MIGRATION_LOCK_KEY = 0x6D61696C63617365  # "mailcase"


# What the models cannot describe, made and kept by the migrations alone: the search
# index (0008), an FTS5 virtual table with its shadow tables on SQLite, a tsvector table
# on PostgreSQL. Autogenerate leaves it out of its comparison, in env.py and in the test
# that checks the models against a migrated database.
OUTSIDE_MODELS = "search_index"


def described_by_models(name: str | None, type_: str, _parents: object) -> bool:
    """Alembic's ``include_name`` hook: False for the tables of the search index."""
    if type_ != "table" or name is None:
        return True
    return name != OUTSIDE_MODELS and not name.startswith(OUTSIDE_MODELS + "_")


COMPARE_OPTIONS: dict[str, Any] = {"compare_type": True, "include_name": described_by_models}
"""How autogenerate compares the models with a database, wherever it is asked."""


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision this version of mailcase knows."""
    current_head = ScriptDirectory.from_config(_config()).get_current_head()
    assert current_head is not None
    return current_head


class StoreUnreachable(Exception):
    """The configured database cannot be opened or reached; the message says which and why."""


def revision_of(url: str) -> str | None:
    """The schema revision of the database at ``url`` (None when empty), opened just for
    this question; StoreUnreachable when it cannot be asked."""
    where = make_url(url).render_as_string(hide_password=True)
    if (path := db.sqlite_file(url)) is not None and not path.exists():
        return None  # new; opening it to ask would create the file (and its folder)
    try:
        engine = db.create(url)
    except OSError as exc:
        raise StoreUnreachable(f"database {where} cannot be opened: {exc.strerror}") from None
    try:
        return current(engine)
    except DBAPIError as exc:
        reason = " ".join(str(exc.orig).split())
        raise StoreUnreachable(f"database {where} cannot be reached: {reason}") from None
    finally:
        engine.dispose()


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return _revision(connection)


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that no other migrating mailcase shares.

    PostgreSQL: a session advisory lock. SQLite: the write lock of BEGIN IMMEDIATE,
    which the engine takes for every writing transaction.
    """
    with engine.connect() as connection:
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            connection.commit()
        try:
            with connection.begin():
                yield connection
        finally:
            if postgres:
                connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                connection.commit()


def upgrade(engine: Engine, target: str = "head") -> tuple[str | None, str]:
    """Migrate to ``target`` (the newest schema by default); returns (before, after)."""
    with _exclusive(engine) as connection:
        before = _revision(connection)
        command.upgrade(_config(connection), target)
        after = _revision(connection)
    assert after is not None
    return before, after


def ensure_current(engine: Engine) -> None:
    """Create an empty database's schema; refuse a database that needs an upgrade."""
    revision = current(engine)
    if revision is None:
        with _exclusive(engine) as connection:
            if _revision(connection) is None:  # another instance may have just made it
                command.upgrade(_config(connection), "head")
                log.info("created the database schema at %s", head())
        revision = current(engine)
    if revision != head():
        raise SchemaBehind(behind_message(revision or "none"))


def behind_message(revision: str) -> str:
    return (
        f"the database is at schema {revision}, this mailcase needs {head()}: "
        "run 'mailcase db upgrade' (after a backup)"
    )
