"""Billing's tables: the client register (more come with invoices and payments)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Integer, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from klients_common.outbox import processed_events_table


class BillingBase(DeclarativeBase):
    """Declarative base of billing's tables."""


class Contract(BillingBase):
    """A gas supply contract in the client register."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_personal_code: Mapped[str] = mapped_column(String(12), index=True)
    supply_address: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)


class MeteredConsumption(BillingBase):
    """A contract's consumption per meter and month, as metering's ``reading_accepted`` events report it;
    the billing run turns it into invoice lines. A later reading of the same window replaces it."""

    __tablename__ = "metered_consumption"
    __table_args__ = (UniqueConstraint("contract", "meter", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(32), index=True)
    meter: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(7))
    reading_id: Mapped[int] = mapped_column(Integer)
    consumption_m3: Mapped[int] = mapped_column(Integer)
    read_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(12))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


processed_events = processed_events_table(BillingBase.metadata)
