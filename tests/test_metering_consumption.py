"""Consumption from readings: apportioning by days across months and years, meter swaps, kWh."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from klients_metering.consumption import Point, Segment, intervals, segments, usage

CV = {"2026-01": Decimal("10.00"), "2026-02": Decimal("11.00")}
DEFAULT = Decimal("10.50")


def test_reading_mid_month_is_apportioned_by_days():
    # 310 m³ between 15 January and 15 February (31 days): 17 days in January, 14 in February.
    segs = segments([Point(date(2026, 1, 15), 1000, "customer"), Point(date(2026, 2, 15), 1310, "customer")], 5)
    january = usage(segs, date(2026, 1, 1), date(2026, 2, 1), CV, DEFAULT)
    february = usage(segs, date(2026, 2, 1), date(2026, 3, 1), CV, DEFAULT)
    assert january.m3 == Decimal("170.000") and february.m3 == Decimal("140.000")
    assert january.kwh == Decimal("1700.00")          # 170 m³ × 10.00
    assert february.kwh == Decimal("1540.00")         # 140 m³ × 11.00
    assert january.covered_days == 17 and february.covered_days == 14
    assert january.quality == "customer"


def test_apportioning_across_a_year_boundary_and_grouping_by_year():
    segs = segments([Point(date(2025, 12, 1), 0, "actual"), Point(date(2026, 1, 31), 610, "actual")], 5)
    years = {start.year: usage(segs, start, end, CV, DEFAULT) for start, end in
             intervals(date(2025, 1, 1), date(2027, 1, 1), "year")}
    assert years[2025].m3 == Decimal("310.000")  # 10 m³ a day: 31 days in December
    assert years[2026].m3 == Decimal("300.000")  # and 30 in January (the reading day starts the next segment)


def test_intervals_align_to_quarters_and_clip_to_the_period():
    assert intervals(date(2026, 2, 10), date(2026, 8, 1), "quarter") == [
        (date(2026, 2, 10), date(2026, 4, 1)), (date(2026, 4, 1), date(2026, 7, 1)),
        (date(2026, 7, 1), date(2026, 8, 1))]


def test_confirmed_rollover_counts_past_the_maximum():
    segs = segments([Point(date(2026, 1, 1), 99_950, "customer"),
                     Point(date(2026, 2, 1), 30, "customer", rollover=True)], 5)
    assert segs == [Segment(date(2026, 1, 1), date(2026, 2, 1), Decimal(80), "customer")]


def test_meter_swap_keeps_both_histories_without_double_counting():
    old = segments([Point(date(2026, 1, 1), 5000, "actual"), Point(date(2026, 1, 16), 5150, "actual")], 5)
    new = segments([Point(date(2026, 1, 16), 0, "actual"), Point(date(2026, 2, 1), 160, "customer")], 5)
    january = usage(old + new, date(2026, 1, 1), date(2026, 2, 1), CV, DEFAULT)
    assert january.m3 == Decimal("310.000")
    assert january.covered_days == 31
    assert january.quality == "customer"


def test_quality_is_the_weakest_source_and_missing_data_is_no_data():
    segs = segments([Point(date(2026, 1, 1), 0, "actual"), Point(date(2026, 1, 10), 90, "estimated"),
                     Point(date(2026, 2, 1), 300, "operator")], 5)
    assert usage(segs, date(2026, 1, 1), date(2026, 2, 1), CV, DEFAULT).quality == "estimated"
    nothing = usage(segs, date(2026, 3, 1), date(2026, 4, 1), CV, DEFAULT)
    assert nothing.quality is None and nothing.m3 == 0 and nothing.covered_days == 0


def test_default_calorific_value_when_the_table_lacks_the_month():
    segs = segments([Point(date(2026, 5, 1), 0, "actual"), Point(date(2026, 6, 1), 100, "actual")], 5)
    assert usage(segs, date(2026, 5, 1), date(2026, 6, 1), CV, DEFAULT).kwh == Decimal("1050.00")
