"""Alembic environment for metering's tables."""

from klients_common.db import run_migrations
from klients_metering.models import MeteringBase

run_migrations(MeteringBase.metadata)
