"""Routing: queue members and their turn, agents who follow every case, merged cases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("agents", sa.Column("follow_all", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    op.add_column("queues", sa.Column("mode", sa.String(length=20), nullable=False,
                                      server_default="round-robin"))
    op.add_column("queues", sa.Column("turn", sa.Integer(), nullable=False,
                                      server_default="0"))
    op.create_table(
        "queue_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["queue_id"], ["queues.id"]),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("queue_id", "agent_id", name="uq_queue_members_queue_agent"),
    )
    # No foreign key: on SQLite it would mean rebuilding the largest table; the case
    # rules alone set this column, to a case they have just read.
    op.add_column("cases", sa.Column("merged_into_id", sa.Integer(), nullable=True))
    op.create_index("ix_cases_owner_open", "cases", ["owner_agent_id", "is_closed"])


def downgrade() -> None:
    op.drop_index("ix_cases_owner_open", table_name="cases")
    op.drop_column("cases", "merged_into_id")
    op.drop_table("queue_members")
    op.drop_column("queues", "turn")
    op.drop_column("queues", "mode")
    op.drop_column("agents", "follow_all")
