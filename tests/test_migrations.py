"""The Alembic migrations build exactly the schema the models describe, on both engines."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mailcase import db, migrate
from mailcase.models import Base


def test_migrations_match_the_models(database_url: str) -> None:
    """After `db upgrade` there is nothing left for autogenerate to add or change."""
    engine = db.create(database_url)
    try:
        assert migrate.current(engine) == migrate.head()
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
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
