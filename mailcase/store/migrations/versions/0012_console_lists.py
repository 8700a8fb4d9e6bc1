"""Indexes for the console's lists over a large store: open cases newest first (every
agent's default views: their own, unassigned, a queue's, escalated) and cases by their
last change (recently updated). Without them each list read the cases from the newest
back until it had found a page of open ones, all million of them when few are open.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 01:00:00
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_open_number", "cases", ["is_closed", "number"])
    op.create_index("ix_cases_updated_at", "cases", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_updated_at", table_name="cases")
    op.drop_index("ix_cases_open_number", table_name="cases")
