"""Client metadata (OpenID Connect Dynamic Client Registration names): a client's
``access_token_signed_response_alg`` and ``id_token_signed_response_alg``. Signing keys of each algorithm
need no schema change (``signing_keys.alg`` names the algorithm a key signs with); ``klients-identity
migrate`` creates the first key of each.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("oauth_clients", sa.Column("client_metadata", sa.JSON, nullable=False, server_default="{}"))


def downgrade() -> None:
    op.drop_column("oauth_clients", "client_metadata")
