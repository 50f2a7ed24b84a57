"""Rate-limit counters in identity's own database (every worker and instance counts together), and
indexes on the expiry columns the retention job (``klients-identity purge``) deletes by.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

EXPIRING = ("login_sessions", "authorization_codes", "refresh_tokens", "email_tokens")


def upgrade() -> None:
    op.create_table(
        "rate_limits",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("expires_at", sa.Float(53), nullable=False),
    )
    op.create_index("ix_rate_limits_expires_at", "rate_limits", ["expires_at"])
    for table in EXPIRING:
        op.create_index(f"ix_{table}_expires_at", table, ["expires_at"])


def downgrade() -> None:
    for table in EXPIRING:
        op.drop_index(f"ix_{table}_expires_at", table_name=table)
    op.drop_index("ix_rate_limits_expires_at", table_name="rate_limits")
    op.drop_table("rate_limits")
