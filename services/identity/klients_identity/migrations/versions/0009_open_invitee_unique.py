"""One open invitation or live grant per invited address and contract (two racing invitations cannot
both land).

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OPEN = sa.text("status IN ('invited', 'active') AND invitee_email IS NOT NULL")


def upgrade() -> None:
    op.create_index("uq_grants_open_invitee", "grants", ["contract", "invitee_email"], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)


def downgrade() -> None:
    op.drop_index("uq_grants_open_invitee", table_name="grants")
