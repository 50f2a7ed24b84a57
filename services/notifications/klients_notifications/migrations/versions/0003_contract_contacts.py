"""Contract contacts (from billing's events).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contract_contacts",
        sa.Column("contract", sa.String(32), primary_key=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("contract_contacts")
