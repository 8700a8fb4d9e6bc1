"""The case's clock: service targets, time waiting on the customer, frozen metrics.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_CASE_COLUMNS = (
    ("sla", sa.String(length=255)),
    ("waiting_since", sa.DateTime()),
    ("reminded_at", sa.DateTime()),
    ("first_response_seconds", sa.Integer()),
    ("business_first_response_seconds", sa.Integer()),
    ("resolution_seconds", sa.Integer()),
    ("business_resolution_seconds", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "case_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("sla", sa.String(length=255), nullable=False),
        sa.Column("calendar", sa.String(length=255), nullable=False),
        sa.Column("target_days", sa.Integer(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=False),
        sa.Column("warn_at", sa.DateTime(), nullable=True),
        sa.Column("paused_at", sa.DateTime(), nullable=True),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.Column("breached_at", sa.DateTime(), nullable=True),
        sa.Column("met_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_targets_case_id", "case_targets", ["case_id"])
    op.create_index("ix_case_targets_due", "case_targets", ["met_at", "paused_at", "due_at"])
    op.create_index("ix_case_targets_warn", "case_targets", ["met_at", "paused_at", "warn_at"])
    for name, kind in _CASE_COLUMNS:
        op.add_column("cases", sa.Column(name, kind, nullable=True))
    op.create_index("ix_cases_waiting", "cases", ["waiting_since"])
    # Cases already on hold (the default hold status) wait since their last change, so
    # reminders and auto-close reach them too. Targets start with cases opened later.
    op.execute("UPDATE cases SET waiting_since = updated_at "
               "WHERE status = 'On Hold' AND is_closed = false")


def downgrade() -> None:
    op.drop_index("ix_cases_waiting", table_name="cases")
    for name, _kind in reversed(_CASE_COLUMNS):
        op.drop_column("cases", name)
    op.drop_table("case_targets")
