"""IMAP health and quarantine: each mailbox's last poll, and when parked mail was quarantined.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mailbox_polls",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("last_failure_at", sa.DateTime(), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("address", name=op.f("pk_mailbox_polls")),
    )
    # Plain ALTER TABLE on both engines (SQLite has had ADD and DROP COLUMN since 3.35):
    # no table rebuild, which foreign keys into inbound_mail would refuse.
    op.add_column("inbound_mail", sa.Column("quarantined_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("inbound_mail", "quarantined_at")
    op.drop_table("mailbox_polls")
