"""Alembic environment for the portal's tables."""

from klients_portal.models import PortalBase

from klients_common.db import run_migrations

run_migrations(PortalBase.metadata)
