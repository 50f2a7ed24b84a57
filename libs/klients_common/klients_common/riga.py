"""Latvia's calendar: times are stored in UTC and shown, and days and windows counted, in Europe/Riga.
The one ``ZoneInfo("Europe/Riga")`` of every component."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

try:
    RIGA = ZoneInfo("Europe/Riga")
except ZoneInfoNotFoundError as exc:  # pragma: no cover - depends on the image
    raise RuntimeError("the Europe/Riga time zone is missing: install the system tzdata") from exc


def riga_today(now: datetime | None = None) -> date:
    """Return today's date in Latvia (at ``now``, an aware time, if given)."""
    return (now or datetime.now(UTC)).astimezone(RIGA).date()


def end_of_day_epoch(day: date) -> int:
    """Return the moment (epoch seconds) a day in Latvia ends: when something valid through ``day`` stops."""
    return int(datetime.combine(day + timedelta(days=1), datetime.min.time(), RIGA).timestamp())
