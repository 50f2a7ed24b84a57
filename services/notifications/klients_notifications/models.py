"""Notifications' tables (the delivery log arrives with the notifications issue)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class NotificationsBase(DeclarativeBase):
    """Declarative base of notifications' tables."""
