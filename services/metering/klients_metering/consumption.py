"""Consumption from readings: segments between consecutive readings, apportioned to intervals by days.

Between two readings of one meter taken on days ``d0`` and ``d1`` (Riga dates), the consumption
``v1 − v0`` (plus ``10**digits`` for a confirmed roll-over) is spread evenly over the days
``d0 … d1 − 1``. An interval gets, from each segment, the segment's daily rate × the days they share; a
segment that crosses a month, quarter or year boundary is split by days. A meter replacement ends the
old meter's last segment at its removal reading and starts the new meter at its installation reading, so
nothing is counted twice or lost across the swap. kWh = m³ × the calorific value of each month the m³
fall in. An interval's quality is the weakest of the segments it draws on
(estimated < customer < operator < actual).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

QUALITY_ORDER = {"estimated": 0, "customer": 1, "operator": 2, "actual": 3}
M3 = Decimal("0.001")
KWH = Decimal("0.01")


@dataclass(frozen=True)
class Point:
    """A reading of one meter: the day it was taken, the register value, its source."""

    day: date
    value: int
    source: str
    rollover: bool = False


@dataclass(frozen=True)
class Segment:
    """Consumption between two readings, spread over ``start`` … ``end`` − 1."""

    start: date
    end: date
    m3: Decimal
    quality: str

    @property
    def days(self) -> int:
        """Return the number of days the segment covers."""
        return (self.end - self.start).days


def segments(points: Iterable[Point], digits: int) -> list[Segment]:
    """Return the segments between consecutive points of one meter (sorted by day)."""
    ordered = sorted(points, key=lambda p: p.day)
    result = []
    for before, after in pairwise(ordered):
        if after.day <= before.day:
            continue
        delta = after.value - before.value
        if delta < 0 and after.rollover:
            delta += 10 ** digits
        if delta < 0:
            continue  # an unconfirmed drop is never stored; skip rather than invent a negative use
        result.append(Segment(before.day, after.day, Decimal(delta), after.source))
    return result


def month_start(day: date) -> date:
    """Return the first day of ``day``'s month."""
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    """Return the first day of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def intervals(period_from: date, period_to: date, group_by: str) -> list[tuple[date, date]]:
    """Return [start, end) intervals aligned to months, quarters or years, clipped to the period."""
    step = {"month": 1, "quarter": 3, "year": 12}[group_by]
    if group_by == "month":
        boundary = month_start(period_from)
    elif group_by == "quarter":
        boundary = date(period_from.year, (period_from.month - 1) // 3 * 3 + 1, 1)
    else:
        boundary = date(period_from.year, 1, 1)
    result = []
    while boundary < period_to:
        following = add_months(boundary, step)
        result.append((max(boundary, period_from), min(following, period_to)))
        boundary = following
    return result


@dataclass
class Usage:
    """What an interval consumed."""

    m3: Decimal
    kwh: Decimal
    covered_days: int
    quality: str | None


def usage(segs: list[Segment], start: date, end: date, calorific: Mapping[str, Decimal],
          default_calorific: Decimal) -> Usage:
    """Return the m³, kWh, days covered and quality of [start, end) from ``segs``."""
    m3 = Decimal(0)
    kwh = Decimal(0)
    covered = 0
    quality: str | None = None
    for seg in segs:
        lo, hi = max(seg.start, start), min(seg.end, end)
        if lo >= hi:
            continue
        rate = seg.m3 / seg.days
        # Split the overlap by month so each part is converted with its own month's calorific value.
        cursor = lo
        while cursor < hi:
            stop = min(add_months(cursor, 1), hi)
            part = rate * (stop - cursor).days
            m3 += part
            kwh += part * calorific.get(f"{cursor:%Y-%m}", default_calorific)
            cursor = stop
        covered += (hi - lo).days
        if quality is None or QUALITY_ORDER[seg.quality] < QUALITY_ORDER[quality]:
            quality = seg.quality
    return Usage(m3.quantize(M3, ROUND_HALF_UP), kwh.quantize(KWH, ROUND_HALF_UP), covered, quality)


def year_earlier(day: date) -> date:
    """Return the same day a year earlier (28 February for 29 February)."""
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)


def daily_average(segs: list[Segment], months: set[int]) -> Decimal | None:
    """Return the average daily m³ over the days of ``segs`` that fall in calendar ``months``."""
    total = Decimal(0)
    days = 0
    for seg in segs:
        rate = seg.m3 / seg.days
        day = seg.start
        while day < seg.end:
            if day.month in months:
                total += rate
                days += 1
            day += timedelta(days=1)
    return total / days if days else None
