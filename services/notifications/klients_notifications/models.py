"""Notifications' tables: the delivery log (one row per event and template: the exactly-once record)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class NotificationsBase(DeclarativeBase):
    """Declarative base of notifications' tables."""


class Delivery(NotificationsBase):
    """A message for one event: who, which template, how many attempts, the outcome."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("event_id", "template"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36))
    template: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(12))  # sending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ContractContact(NotificationsBase):
    """Where to write about a contract (the client register's address), kept from billing's
    ``contract_registered`` events."""

    __tablename__ = "contract_contacts"

    contract: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Preference(NotificationsBase):
    """What an address has turned off. Security messages (links, invitations, contact changes) are never
    subject to it."""

    __tablename__ = "preferences"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    reminders: Mapped[bool] = mapped_column(default=True)
    language: Mapped[str | None] = mapped_column(String(2), nullable=True)  # the person's, from identity
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
