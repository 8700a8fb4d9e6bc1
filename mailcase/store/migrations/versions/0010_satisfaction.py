"""Satisfaction: the contact's rating of a closed case, and their comment; and an index
on the parent case (a case's children were found by reading every case).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("satisfaction", sa.String(length=10), nullable=True))
    op.add_column("cases", sa.Column("satisfaction_comment", sa.Text(), nullable=True))
    op.add_column("cases", sa.Column("satisfaction_at", sa.DateTime(), nullable=True))
    op.create_index("ix_cases_parent_id", "cases", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_cases_parent_id", table_name="cases")
    for name in ("satisfaction_at", "satisfaction_comment", "satisfaction"):
        op.drop_column("cases", name)
