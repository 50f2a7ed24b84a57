"""Token revocations by token id or by login (``token_revocations``), announced to every service; they replace
``revoked_access_tokens``, which only identity's own endpoints consulted.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "token_revocations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
    )
    op.create_index("ix_token_revocations_kind_value", "token_revocations", ["kind", "value"])
    op.create_index("ix_token_revocations_revoked_at", "token_revocations", ["revoked_at"])
    # Access tokens live five minutes: revocations older than that need not move.
    op.drop_index("ix_revoked_access_tokens_expires_at", table_name="revoked_access_tokens")
    op.drop_table("revoked_access_tokens")


def downgrade() -> None:
    op.create_table(
        "revoked_access_tokens",
        sa.Column("jti", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_revoked_access_tokens_expires_at", "revoked_access_tokens", ["expires_at"])
    op.drop_index("ix_token_revocations_revoked_at", table_name="token_revocations")
    op.drop_index("ix_token_revocations_kind_value", table_name="token_revocations")
    op.drop_table("token_revocations")
