"""Metering's tables: meters per contract (readings come with the metering issue)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class MeteringBase(DeclarativeBase):
    """Declarative base of metering's tables."""


class Meter(MeteringBase):
    """A gas meter at a contract's supply point."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(32), index=True)
    serial_number: Mapped[str] = mapped_column(String(32), unique=True)
    meter_type: Mapped[str] = mapped_column(String(8), default="G4")
    digits: Mapped[int] = mapped_column(Integer, default=5)
    unit: Mapped[str] = mapped_column(String(4), default="m3")
    installed_on: Mapped[date] = mapped_column(Date)
    removed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
