"""The reading window: 27th 00:00 Riga time to the end of the next month's first working day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from klients_metering.window import RIGA, WindowRules, is_working_day

RULES = WindowRules()


def riga(*args: int) -> datetime:
    return datetime(*args, tzinfo=RIGA)


@pytest.mark.parametrize(("moment", "open_period"), [
    (riga(2026, 11, 26, 23, 59, 59), None),
    (riga(2026, 11, 27, 0, 0, 0), "2026-11"),
    # The same instants in UTC: Riga is UTC+2 in November.
    (datetime(2026, 11, 26, 21, 59, 59, tzinfo=UTC), None),
    (datetime(2026, 11, 26, 22, 0, 0, tzinfo=UTC), "2026-11"),
    # Summer time (UTC+3): the window opens at 21:00 UTC on the 26th.
    (datetime(2026, 7, 26, 20, 59, 59, tzinfo=UTC), None),
    (datetime(2026, 7, 26, 21, 0, 0, tzinfo=UTC), "2026-07"),
    # March 2026: the clocks go forward on Sunday 29 March, inside the window; it still opens at local midnight.
    (datetime(2026, 3, 26, 21, 59, 59, tzinfo=UTC), None),
    (datetime(2026, 3, 26, 22, 0, 0, tzinfo=UTC), "2026-03"),
    (riga(2026, 3, 31, 12, 0), "2026-03"),
    # October 2026: the clocks go back on Sunday 25 October, before the window; it opens at 21:00 UTC.
    (datetime(2026, 10, 26, 20, 59, 59, tzinfo=UTC), None),
    (datetime(2026, 10, 26, 21, 0, 0, tzinfo=UTC), None),
    (datetime(2026, 10, 26, 22, 0, 0, tzinfo=UTC), "2026-10"),
])
def test_window_opens_at_midnight_riga_time(moment, open_period):
    window = RULES.window_at(moment)
    assert (window.period if window else None) == open_period


@pytest.mark.parametrize(("year", "month", "last_day"), [
    (2026, 11, date(2026, 12, 1)),   # Tuesday 1 December is a working day
    (2026, 12, date(2027, 1, 4)),    # 1 January holiday (Friday), weekend: Monday 4 January
    (2025, 12, date(2026, 1, 5)),    # 1 January holiday, 2 January a substituted day off, weekend
    (2026, 4, date(2026, 5, 5)),     # 1 May holiday (Friday), weekend, 4 May Restoration of Independence
    (2026, 7, date(2026, 8, 3)),     # 1 August is a Saturday
])
def test_window_closes_after_the_first_working_day(year, month, last_day):
    window = RULES.window(year, month)
    assert window.closes == riga(last_day.year, last_day.month, last_day.day) + timedelta(days=1)
    assert window.contains(datetime.combine(last_day, datetime.max.time(), RIGA))
    assert not window.contains(window.closes)
    assert is_working_day(last_day)


def test_a_reading_in_the_next_month_belongs_to_the_window_it_was_opened_in():
    assert RULES.window_at(riga(2027, 1, 4, 18, 0)).period == "2026-12"
    assert RULES.window_at(riga(2027, 1, 5, 0, 0)) is None


def test_next_window_is_announced_when_closed():
    upcoming = RULES.next_window(riga(2026, 12, 2, 10, 0))
    assert upcoming.period == "2026-12"
    assert upcoming.opens == riga(2026, 12, 27)


def test_configurable_window():
    rules = WindowRules(open_day=25, close_working_days=3)
    window = rules.window(2026, 11)
    assert window.opens == riga(2026, 11, 25)
    assert window.closes == riga(2026, 12, 4)  # working days 1, 2, 3 December
    short_month = WindowRules(open_day=31).window(2027, 2)
    assert short_month.opens == riga(2027, 2, 28)
