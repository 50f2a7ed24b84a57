"""Alembic environment for notifications's tables."""

from klients_common.db import run_migrations
from klients_notifications.models import NotificationsBase

run_migrations(NotificationsBase.metadata)
