"""Identity's tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class IdentityBase(DeclarativeBase):
    """Declarative base of identity's tables."""


class SigningKey(IdentityBase):
    """An RSA key that signs tokens from ``active_from``, published until ``retire_at``."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="RS256")
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    retire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
