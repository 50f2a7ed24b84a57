"""Metering's tables: meters per contract, readings with their history, calorific values, the outbox."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Boolean, Date, DateTime, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from klients_common.outbox import outbox_table

SOURCES = ("customer", "operator", "estimated", "actual")


class MeteringBase(DeclarativeBase):
    """Declarative base of metering's tables."""


class Meter(MeteringBase):
    """A gas meter at a contract's supply point; a replacement is a new row, the old one gets removed_on."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(32), index=True)
    serial_number: Mapped[str] = mapped_column(String(32), unique=True)
    meter_type: Mapped[str] = mapped_column(String(8), default="G4")
    digits: Mapped[int] = mapped_column(Integer, default=5)
    unit: Mapped[str] = mapped_column(String(4), default="m3")
    installed_on: Mapped[date] = mapped_column(Date)
    install_reading: Mapped[int] = mapped_column(Integer, default=0)
    removed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    removal_reading: Mapped[int | None] = mapped_column(Integer, nullable=True)

    @property
    def maximum(self) -> int:
        """Return the largest value the register shows before it rolls over to zero."""
        return 10 ** self.digits - 1


class Reading(MeteringBase):
    """A meter reading. A resubmission in the same window supersedes the earlier one; both are kept."""

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_meter_current", "meter_id", "superseded_by_id", "read_on"),
        Index("ix_readings_period", "period", "meter_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    value: Mapped[int] = mapped_column(Integer)
    read_on: Mapped[date] = mapped_column(Date)
    period: Mapped[str | None] = mapped_column(String(7), nullable=True)  # the window's month, customer readings
    source: Mapped[str] = mapped_column(String(12))
    rollover: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)  # unusually high, confirmed: operator review
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    submitted_by: Mapped[str | None] = mapped_column(String(64), nullable=True)  # person id (sub)
    submitted_role: Mapped[str | None] = mapped_column(String(12), nullable=True)  # owner/delegate/subuser
    superseded_by_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"), nullable=True)


class CalorificValue(MeteringBase):
    """kWh per m³ for a month (the gross calorific value the transmission operator publishes)."""

    __tablename__ = "calorific_values"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    kwh_per_m3: Mapped[Decimal] = mapped_column(Numeric(8, 4))


class ReminderRun(MeteringBase):
    """One row per window whose reminders were sent, so several instances send them once."""

    __tablename__ = "reminder_runs"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


outbox = outbox_table(MeteringBase.metadata)
