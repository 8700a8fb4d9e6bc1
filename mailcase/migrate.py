"""Schema migrations with Alembic: bring a database to the current schema, or say it is behind.

``mailcase db upgrade`` runs them; ``serve`` creates a brand-new database itself but
refuses to start on one that is merely behind, so upgrades stay an operator's decision.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaBehind(Exception):
    """The database exists but is older than this version of mailcase."""


def _config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head() -> str:
    """The newest revision this version of mailcase knows."""
    current = ScriptDirectory.from_config(_config_stub()).get_current_head()
    assert current is not None
    return current


def _config_stub() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Migrate to the newest schema; returns (revision before, revision after)."""
    before = current(engine)
    command.upgrade(_config(engine), "head")
    return before, head()


def ensure_current(engine: Engine) -> None:
    """Create an empty database's schema; refuse a database that needs an upgrade."""
    revision = current(engine)
    if revision is None:
        upgrade(engine)
        log.info("created the database schema at %s", head())
    elif revision != head():
        raise SchemaBehind(behind_message(revision))


def behind_message(revision: str) -> str:
    return (
        f"the database is at schema {revision}, this mailcase needs {head()}: "
        "run 'mailcase db upgrade' (after a backup)"
    )
