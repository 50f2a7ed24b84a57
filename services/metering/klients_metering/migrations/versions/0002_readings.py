"""Readings, calorific values, reminder runs, the outbox; meters get their install and removal readings.

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
    op.add_column("meters", sa.Column("install_reading", sa.Integer, nullable=False, server_default="0"))
    op.add_column("meters", sa.Column("removal_reading", sa.Integer, nullable=True))
    op.create_table(
        "readings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("meter_id", sa.Integer, sa.ForeignKey("meters.id"), nullable=False),
        sa.Column("value", sa.Integer, nullable=False),
        sa.Column("read_on", sa.Date, nullable=False),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("source", sa.String(12), nullable=False),
        sa.Column("rollover", sa.Boolean, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.String(64), nullable=True),
        sa.Column("submitted_role", sa.String(12), nullable=True),
        sa.Column("superseded_by_id", sa.Integer, sa.ForeignKey("readings.id"), nullable=True),
    )
    op.create_index("ix_readings_meter_current", "readings", ["meter_id", "superseded_by_id", "read_on"])
    op.create_index("ix_readings_period", "readings", ["period", "meter_id"])
    op.create_table(
        "calorific_values",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("kwh_per_m3", sa.Numeric(8, 4), nullable=False),
    )
    op.create_table(
        "reminder_runs",
        sa.Column("period", sa.String(7), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True, index=True),
    )


def downgrade() -> None:
    for table in ("outbox", "reminder_runs", "calorific_values", "readings"):
        op.drop_table(table)
    op.drop_column("meters", "removal_reading")
    op.drop_column("meters", "install_reading")
