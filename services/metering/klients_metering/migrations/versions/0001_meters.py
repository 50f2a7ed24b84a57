"""Meters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contract", sa.String(32), nullable=False, index=True),
        sa.Column("serial_number", sa.String(32), nullable=False, unique=True),
        sa.Column("meter_type", sa.String(8), nullable=False),
        sa.Column("digits", sa.Integer, nullable=False),
        sa.Column("unit", sa.String(4), nullable=False),
        sa.Column("installed_on", sa.Date, nullable=False),
        sa.Column("removed_on", sa.Date, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("meters")
