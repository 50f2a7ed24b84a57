"""Access management: invitations, grant details (invitee, expected personal code, dates, who ended it),
operator applications with their attachments.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.add_column(sa.Column("invitee_name", sa.String(200), nullable=True))
        batch.add_column(sa.Column("invitee_email", sa.String(254), nullable=True))
        batch.add_column(sa.Column("expected_personal_code", sa.String(12), nullable=True))
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("end_reason", sa.String(300), nullable=True))
        batch.create_index("ix_grants_contract_status", ["contract", "status"])
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("grant_id", sa.String(36), sa.ForeignKey("grants.id"), nullable=False, index=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "applications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("contract", sa.String(32), nullable=False, index=True),
        sa.Column("holder_name", sa.String(200), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("personal_code", sa.String(12), nullable=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("level", sa.String(16), nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("attachment_name", sa.String(200), nullable=False),
        sa.Column("attachment_type", sa.String(40), nullable=False),
        sa.Column("attachment_size", sa.Integer(), nullable=False),
        sa.Column("attachment_sha256", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(100), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(100), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("grant_id", sa.String(36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("applications")
    op.drop_table("invitations")
    with op.batch_alter_table("grants") as batch:
        batch.drop_index("ix_grants_contract_status")
        for column in ("end_reason", "ended_by", "accepted_at", "valid_from", "expected_personal_code",
                       "invitee_email", "invitee_name"):
            batch.drop_column(column)
