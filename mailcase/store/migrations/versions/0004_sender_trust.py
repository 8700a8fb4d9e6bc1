"""Who wrote a mail: the sender-authentication verdict on each message, and the operator's
release of a reply held for review.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both engines, as in 0002: no table rebuild.
    op.add_column("messages", sa.Column("sender_auth", sa.String(length=500), nullable=True))
    op.add_column("inbound_mail", sa.Column("released", sa.Boolean(), nullable=False,
                                            server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("inbound_mail", "released")
    op.drop_column("messages", "sender_auth")
