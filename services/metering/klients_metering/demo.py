"""Demo meters for the demo contracts of product.md §8."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Meter

DEMO_METERS = [
    dict(contract="LVG-100001", serial_number="G4-2019-000101"),
    dict(contract="LVG-100002", serial_number="G4-2019-000102"),
    dict(contract="LVG-100003", serial_number="G4-2019-000103"),
    dict(contract="LVG-100004", serial_number="G4-2019-000104"),
]


def seed(session: Session) -> int:
    """Insert the demo meters that are missing; return how many were added."""
    existing = set(session.scalars(select(Meter.serial_number)))
    added = [Meter(installed_on=date(2019, 6, 1), **row) for row in DEMO_METERS if row["serial_number"] not in existing]
    session.add_all(added)
    return len(added)
