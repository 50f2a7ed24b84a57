"""The reading window: from the 27th of a month to the end of the first working day of the next month,
in Europe/Riga time, Latvian public holidays (and the days off the government substitutes) counted.

Both ends are configurable (``READING_WINDOW_OPEN_DAY``, ``READING_WINDOW_CLOSE_WORKING_DAYS``). A window
belongs to the month it opens in: a reading sent on 2 January in the December window is December's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import holidays

from klients_common.riga import RIGA


@lru_cache(maxsize=32)
def _latvian_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("LV", years=[year])


def is_working_day(day: date) -> bool:
    """Return whether ``day`` is a working day in Latvia."""
    return day.weekday() < 5 and day not in _latvian_holidays(day.year)


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


@dataclass(frozen=True)
class Window:
    """One month's reading window, ``opens`` inclusive and ``closes`` exclusive (aware datetimes)."""

    period: str  # "YYYY-MM", the month the window opens in
    opens: datetime
    closes: datetime

    def contains(self, moment: datetime) -> bool:
        """Return whether ``moment`` (aware) falls inside the window."""
        return self.opens <= moment < self.closes


@dataclass(frozen=True)
class WindowRules:
    """When windows open and close."""

    open_day: int = 27
    close_working_days: int = 1

    def window(self, year: int, month: int) -> Window:
        """Return the window that opens in ``year``-``month``."""
        last_day = (date(*_next_month(year, month), 1) - timedelta(days=1)).day
        opens = datetime.combine(date(year, month, min(self.open_day, last_day)), time(0), RIGA)
        day = date(*_next_month(year, month), 1)
        counted = 0
        while True:
            if is_working_day(day):
                counted += 1
                if counted == self.close_working_days:
                    break
            day += timedelta(days=1)
        closes = datetime.combine(day + timedelta(days=1), time(0), RIGA)
        return Window(period=f"{year:04d}-{month:02d}", opens=opens, closes=closes)

    def window_at(self, moment: datetime) -> Window | None:
        """Return the window open at ``moment`` (aware), or None."""
        local = moment.astimezone(RIGA)
        previous = (local.year - 1, 12) if local.month == 1 else (local.year, local.month - 1)
        for year, month in (previous, (local.year, local.month)):
            window = self.window(year, month)
            if window.contains(moment):
                return window
        return None

    def next_window(self, moment: datetime) -> Window:
        """Return the first window that opens after ``moment``."""
        local = moment.astimezone(RIGA)
        window = self.window(local.year, local.month)
        if window.opens > moment:
            return window
        return self.window(*_next_month(local.year, local.month))


def window_state(rules: WindowRules, moment: datetime) -> dict[str, Any]:
    """Say where ``moment`` (aware) stands: ``open`` with the open window's period and ends, or not open
    with the next window's (``closes`` is exclusive: the window ends just before it)."""
    window = rules.window_at(moment)
    is_open = window is not None
    window = window or rules.next_window(moment)
    return {"open": is_open, "period": window.period, "opens": window.opens.isoformat(),
            "closes": window.closes.isoformat()}
