"""Partial indexes for the queue claims: the oldest pending inbound and outbound mail.

Without them PostgreSQL answered "oldest pending" by walking the primary key past
every mail ever processed (20 ms a claim at 190,000 rows, growing with the history),
and SQLite sorted all due rows for each claim.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    for table in ("inbound_mail", "outbound_mail"):
        op.create_index(f"ix_{table}_pending", table, ["id"], unique=False,
                        sqlite_where=PENDING, postgresql_where=PENDING)


def downgrade() -> None:
    for table in ("inbound_mail", "outbound_mail"):
        op.drop_index(f"ix_{table}_pending", table_name=table)
