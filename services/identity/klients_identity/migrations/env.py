"""Alembic environment for identity's tables."""

from klients_common.db import run_migrations
from klients_identity.models import IdentityBase

run_migrations(IdentityBase.metadata)
