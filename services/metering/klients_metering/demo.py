"""Demo meters with a year of readings for the demo contracts (docs/domain.md, "Demo data"), and calorific values."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .consumption import add_months
from .models import CalorificValue, Meter, Reading

DEMO_METERS = [
    dict(contract="LVG-100001", serial_number="G4-2019-000101", install_reading=1520),
    dict(contract="LVG-100002", serial_number="G4-2019-000102", install_reading=310),
    dict(contract="LVG-100003", serial_number="G4-2019-000103", install_reading=8840),
    dict(contract="LVG-100004", serial_number="G4-2019-000104", install_reading=99200),
]
# A household's m³ per month, January first: heating in winter, cooking and hot water in summer.
MONTHLY_M3 = [190, 165, 130, 80, 40, 22, 18, 20, 38, 85, 140, 180]


def seed(session: Session, today: date | None = None) -> int:
    """Insert the demo meters, 12 monthly readings each (the last one in last month's window), and
    24 months of calorific values, where missing; return how many rows were added."""
    today = today or datetime.now(UTC).date()
    added = 0
    existing = set(session.scalars(select(Meter.serial_number)))
    first = add_months(today, -13).replace(day=28)
    for row in DEMO_METERS:
        if row["serial_number"] in existing:
            continue
        meter = Meter(installed_on=first, **row)
        session.add(meter)
        session.flush()
        value = meter.install_reading
        for month in range(1, 13):
            read_on = add_months(first, month).replace(day=28)
            value = (value + MONTHLY_M3[read_on.month - 1]) % 10 ** meter.digits
            session.add(Reading(meter_id=meter.id, value=value, read_on=read_on, period=f"{read_on:%Y-%m}",
                                source="customer" if month % 4 else "actual", rollover=False, flagged=False,
                                submitted_at=datetime(read_on.year, read_on.month, read_on.day, 9, tzinfo=UTC),
                                submitted_role="owner"))
            added += 1
        added += 1
    have = set(session.scalars(select(CalorificValue.period)))
    for back in range(24):
        period = f"{add_months(today, -back):%Y-%m}"
        if period not in have:
            session.add(CalorificValue(period=period, kwh_per_m3=Decimal("10.55") + Decimal(back % 5) / 100))
            added += 1
    return added
