"""Room in each page for the one update a refresh token and a code get (``rotated_at``, ``used_at``): with pages
filled to 80 % PostgreSQL can make that update a heap-only tuple (no indexed column changes, the new version
fits the same page), so it writes no new entry in any of the table's indexes (five on ``refresh_tokens``).
Pages written before keep their fill; SQLite has no such setting.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

TABLES = ("refresh_tokens", "authorization_codes")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} SET (fillfactor = 80)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"ALTER TABLE {table} RESET (fillfactor)")
