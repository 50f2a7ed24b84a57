"""Alembic environment for billing's tables."""

from klients_billing.models import BillingBase
from klients_common.db import run_migrations

run_migrations(BillingBase.metadata)
