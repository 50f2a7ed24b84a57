"""Metered consumption from metering's events, and the processed-events inbox.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metered_consumption",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contract", sa.String(32), nullable=False, index=True),
        sa.Column("meter", sa.String(32), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("reading_id", sa.Integer, nullable=False),
        sa.Column("consumption_m3", sa.Integer, nullable=False),
        sa.Column("read_on", sa.Date, nullable=False),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("contract", "meter", "period"),
    )
    op.create_table(
        "processed_events",
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("processed_events")
    op.drop_table("metered_consumption")
