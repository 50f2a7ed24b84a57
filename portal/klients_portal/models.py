"""The portal's tables: server-side sessions (the browser holds only a random id, its SHA-256 is the key
here; the tokens, encrypted (``crypto``), the login in progress, CSRF secret and payment attempts live in the
row) and rate-limit counters (``klients_common.ratelimit``: every replica counts together)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from klients_common.ratelimit import rate_limits_table


class PortalBase(DeclarativeBase):
    """The portal's tables."""


RATE_LIMITS = rate_limits_table(PortalBase.metadata)


class PortalSession(PortalBase):
    """One browser's session."""

    __tablename__ = "portal_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    access_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    access_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    refresh_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    id_token: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
