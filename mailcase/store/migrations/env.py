"""Alembic environment: runs migrations on the connection mailcase hands over."""

from alembic import context
from sqlalchemy import Connection

from mailcase.store.migrate import COMPARE_OPTIONS
from mailcase.store.models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through 'mailcase db upgrade'")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    **COMPARE_OPTIONS,
)
with context.begin_transaction():
    context.run_migrations()
