"""Metering's service layer: plain functions with keyword-only arguments and an explicit session.

The nameko service (``service.py``) checks rights and calls these; tests call them directly with a
chosen ``now`` against a real database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from klients_common.errors import NotFound, ValidationFailed
from klients_common.outbox import enqueue

from .consumption import Point, Segment, daily_average, intervals, segments, usage, year_earlier
from .models import CalorificValue, Meter, Reading, ReminderRun, outbox
from .window import RIGA, Window, WindowRules

NUMBER = re.compile(r"-?[0-9]+([.,][0-9]+)?")
MAX_HISTORY_YEARS = 20
MIN_FLAGGED_M3 = 10  # below this, a consumption is never "unusually high", whatever the history


@dataclass(frozen=True)
class Rules:
    """The submission rules in force (from configuration)."""

    window: WindowRules = field(default_factory=WindowRules)
    implausible_factor: Decimal = Decimal(3)
    default_calorific: Decimal = Decimal("10.55")


@dataclass(frozen=True)
class Actor:
    """Who submits: the person (token ``sub``) and their role on the contract."""

    person_id: str | None
    role: str | None


def _refuse(code: str, message: str, **extra: Any) -> ValidationFailed:
    return ValidationFailed(message, {"code": code, **extra})


def _field_error(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {"errors": [{"field": field, "code": code, "message": message}]})


# --- meters and readings --------------------------------------------------------------------------

def get_meter_or_raise(*, db_session: Session, contract: str, serial: str) -> Meter:
    """Return the contract's meter with this serial number, or raise NotFound."""
    meter = db_session.scalar(select(Meter).where(Meter.contract == contract, Meter.serial_number == serial))
    if meter is None:
        raise NotFound(f"meter {serial} not found on contract {contract}")
    return meter


def get_all_meters(*, db_session: Session, contract: str) -> list[Meter]:
    """Return the contract's meters, the current one last."""
    return list(db_session.scalars(select(Meter).where(Meter.contract == contract).order_by(Meter.installed_on)))


def get_current_readings(*, db_session: Session, meter: Meter) -> list[Reading]:
    """Return the meter's readings that count (not superseded), oldest first."""
    return list(db_session.scalars(
        select(Reading).where(Reading.meter_id == meter.id, Reading.superseded_by_id.is_(None))
        .order_by(Reading.read_on, Reading.id)))


def last_current_readings(*, db_session: Session, meters: list[Meter]) -> dict[int, Reading]:
    """Return each meter's newest current (not superseded) reading, by meter id, in one query."""
    if not meters:
        return {}
    rows = db_session.scalars(
        select(Reading).where(Reading.meter_id.in_([m.id for m in meters]), Reading.superseded_by_id.is_(None))
        .order_by(Reading.read_on.desc(), Reading.id.desc()))
    found: dict[int, Reading] = {}
    for reading in rows:
        found.setdefault(reading.meter_id, reading)
    return found


def get_all_readings(*, db_session: Session, meter: Meter) -> list[Reading]:
    """Return every reading of the meter, superseded ones included, newest first."""
    return list(db_session.scalars(
        select(Reading).where(Reading.meter_id == meter.id).order_by(Reading.read_on.desc(), Reading.id.desc())))


def meter_points(meter: Meter, readings: list[Reading]) -> list[Point]:
    """Return the meter's installation reading, its current readings and its removal reading as points."""
    points = [Point(meter.installed_on, meter.install_reading, "actual")]
    points += [Point(r.read_on, r.value, r.source, r.rollover) for r in readings]
    if meter.removed_on is not None and meter.removal_reading is not None:
        points.append(Point(meter.removed_on, meter.removal_reading, "actual"))
    return points


def parse_value(raw: Any, meter: Meter) -> int:
    """Return a meter reading as whole m³, or raise ValidationFailed naming what is wrong."""
    not_a_number = _field_error("value", "not_a_number", "The reading must be a whole number of cubic metres.")
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise not_a_number
    if isinstance(raw, str):
        if not NUMBER.fullmatch(raw.strip()):
            raise not_a_number
        raw = raw.strip().replace(",", ".")
    number = Decimal(raw)
    if not number.is_finite():
        raise not_a_number
    if number < 0:
        raise _field_error("value", "negative", "A meter reading cannot be negative.")
    if number != number.to_integral_value():
        raise _field_error("value", "not_whole", "Enter whole cubic metres only (the black digits).")
    if number > meter.maximum:
        raise _field_error("value", "too_many_digits",
                           f"This meter shows at most {meter.digits} whole digits (up to {meter.maximum}).")
    return int(number)


# --- submission -----------------------------------------------------------------------------------

def submit_reading(*, db_session: Session, contract: str, serial: str, raw_value: Any, actor: Actor, rules: Rules,
                   now: datetime, confirm_rollover: bool = False, confirm_unusual: bool = False) -> Reading:
    """Accept a client's reading in the open window (replacing an earlier one of the same window), or
    raise ValidationFailed saying why not and what to do. Enqueues ``reading_accepted``."""
    meter = get_meter_or_raise(db_session=db_session, contract=contract, serial=serial)
    if meter.removed_on is not None:
        raise _refuse("meter_removed", f"Meter {serial} was removed on {meter.removed_on:%d.%m.%Y}.")
    window = rules.window.window_at(now)
    if window is None:
        upcoming = rules.window.next_window(now)
        _reject(db_session, meter, raw_value, actor, "outside_window")
        raise _refuse(
            "outside_window",
            f"Readings are accepted from {upcoming.opens:%d.%m.%Y} to "
            f"{upcoming.closes - timedelta(days=1):%d.%m.%Y} (Riga time).",
            opens=upcoming.opens.isoformat(), closes=upcoming.closes.isoformat())
    value = parse_value(raw_value, meter)
    readings = get_current_readings(db_session=db_session, meter=meter)
    replaced = next((r for r in readings if r.period == window.period and r.source == "customer"), None)
    earlier = [r for r in readings if r is not replaced]
    baseline = meter_points(meter, earlier)[-1]
    read_on = now.astimezone(RIGA).date()

    rollover = False
    consumption = value - baseline.value
    if consumption < 0:
        if not confirm_rollover:
            _reject(db_session, meter, value, actor, "lower_than_previous")
            raise _refuse("lower_than_previous",
                          f"The reading {value} is lower than the previous one ({baseline.value}). If the meter "
                          f"passed {meter.maximum} and started again from 0, confirm the roll-over.",
                          previous=baseline.value)
        rollover = True
        consumption += 10 ** meter.digits

    flagged = _unusually_high(meter, earlier, baseline.day, read_on, consumption, rules)
    if flagged and not confirm_unusual:
        raise _refuse("confirmation_required",
                      f"{consumption} m³ is much more than this meter's usual consumption for this time of year. "
                      "Check the reading; if it is right, confirm it and we will review it.",
                      consumption_m3=consumption)

    reading = Reading(meter_id=meter.id, value=value, read_on=read_on, period=window.period, source="customer",
                      rollover=rollover, flagged=flagged, submitted_at=now, submitted_by=actor.person_id,
                      submitted_role=actor.role)
    db_session.add(reading)
    db_session.flush()
    if replaced is not None:
        replaced.superseded_by_id = reading.id
    _accepted(db_session, meter, reading, consumption, replaced, rules.default_calorific)
    return reading


def record_reading(*, db_session: Session, contract: str, serial: str, value: int, read_on: date, source: str,
                   now: datetime, actor: Actor | None = None, rollover: bool = False,
                   default_calorific: Decimal = Decimal("10.55")) -> Reading:
    """Store an operator, estimated or actual (utility) reading, outside any window; enqueue reading_accepted."""
    if source not in ("operator", "estimated", "actual"):
        raise _field_error("source", "bad_source", "source must be operator, estimated or actual")
    meter = get_meter_or_raise(db_session=db_session, contract=contract, serial=serial)
    value = parse_value(value, meter)
    earlier = [r for r in get_current_readings(db_session=db_session, meter=meter) if r.read_on <= read_on]
    baseline = meter_points(meter, earlier)[-1]
    consumption = value - baseline.value + (10 ** meter.digits if rollover else 0)
    if consumption < 0:
        raise _refuse("lower_than_previous", f"{value} is lower than the previous reading {baseline.value}")
    reading = Reading(meter_id=meter.id, value=value, read_on=read_on, period=None, source=source,
                      rollover=rollover, submitted_at=now, submitted_by=actor.person_id if actor else None,
                      submitted_role=actor.role if actor else source)
    db_session.add(reading)
    db_session.flush()
    _accepted(db_session, meter, reading, consumption, None, default_calorific)
    return reading


def _unusually_high(meter: Meter, earlier: list[Reading], since: date, until: date, consumption: int,
                    rules: Rules) -> bool:
    if consumption < MIN_FLAGGED_M3:
        return False
    history = segments(meter_points(meter, earlier), meter.digits)
    months = set()
    day = since
    while day < max(until, since + timedelta(days=1)):
        months.add(day.month)
        day += timedelta(days=1)
    average = daily_average(history, months)
    if average is None or average == 0:
        return False
    days = max((until - since).days, 1)
    return Decimal(consumption) > rules.implausible_factor * average * days


def _accepted(db_session: Session, meter: Meter, reading: Reading, consumption: int, replaced: Reading | None,
              default_calorific: Decimal) -> None:
    calorific = db_session.get(CalorificValue, f"{reading.read_on:%Y-%m}")
    kwh = Decimal(consumption) * (calorific.kwh_per_m3 if calorific else default_calorific)
    payload = {
        "contract": meter.contract, "meter": meter.serial_number, "reading_id": reading.id, "value": reading.value,
        "read_on": reading.read_on.isoformat(), "period": reading.period, "source": reading.source,
        "consumption_m3": consumption, "consumption_kwh": f"{kwh:.3f}", "rollover": reading.rollover,
        "flagged": reading.flagged,
        "submitted_by": reading.submitted_by, "submitted_role": reading.submitted_role,
        "submitted_at": reading.submitted_at.isoformat(), "replaces": replaced.id if replaced else None,
    }
    enqueue(db_session, outbox, "reading_accepted", payload)
    if reading.flagged:
        enqueue(db_session, outbox, "reading_flagged", payload)


def _reject(db_session: Session, meter: Meter, value: Any, actor: Actor, reason: str) -> None:
    """Record a final refusal as an event (for notifications and operators); no reading is stored."""
    enqueue(db_session, outbox, "reading_rejected", {
        "contract": meter.contract, "meter": meter.serial_number, "value": value if isinstance(value, int) else None,
        "reason": reason, "submitted_by": actor.person_id, "submitted_role": actor.role})
    db_session.commit()


# --- consumption history --------------------------------------------------------------------------

def parse_history_query(period_from: Any, period_to: Any, group_by: Any) -> tuple[date, date, str]:
    """Return validated (from, to, group_by) or raise ValidationFailed listing each bad field."""
    errors = []
    parsed: dict[str, date] = {}
    for name, raw in (("period_from", period_from), ("period_to", period_to)):
        try:
            parsed[name] = date.fromisoformat(str(raw))
        except ValueError:
            errors.append({"field": name, "code": "bad_date", "message": f"{name} must be a date, YYYY-MM-DD"})
    if group_by not in ("month", "quarter", "year"):
        errors.append({"field": "group_by", "code": "bad_group_by", "message": "group_by is month, quarter or year"})
    if not errors:
        if parsed["period_from"] >= parsed["period_to"]:
            errors.append({"field": "period_to", "code": "empty_period",
                           "message": "period_to must be after period_from"})
        elif (parsed["period_to"] - parsed["period_from"]).days > 366 * MAX_HISTORY_YEARS:
            errors.append({"field": "period_from", "code": "too_long",
                           "message": f"ask for at most {MAX_HISTORY_YEARS} years at a time"})
    if errors:
        raise ValidationFailed("The consumption query has errors.", {"errors": errors})
    return parsed["period_from"], parsed["period_to"], str(group_by)


def consumption_history(*, db_session: Session, contract: str, period_from: date, period_to: date, group_by: str,
                        default_calorific: Decimal) -> list[dict[str, Any]]:
    """Return the contract's consumption per interval, with last year's figure beside each."""
    segs: list[Segment] = []
    for meter in get_all_meters(db_session=db_session, contract=contract):
        segs += segments(meter_points(meter, get_current_readings(db_session=db_session, meter=meter)), meter.digits)
    calorific = {row.period: row.kwh_per_m3 for row in db_session.scalars(select(CalorificValue))}
    result = []
    for start, end in intervals(period_from, period_to, group_by):
        now = usage(segs, start, end, calorific, default_calorific)
        before = usage(segs, year_earlier(start), year_earlier(end), calorific, default_calorific)
        result.append({
            "interval_start": start.isoformat(), "interval_end": end.isoformat(),
            "consumption_m3": str(now.m3) if now.quality else None,
            "consumption_kwh": str(now.kwh) if now.quality else None,
            "quality": now.quality, "covered_days": now.covered_days, "days": (end - start).days,
            "previous_year_m3": str(before.m3) if before.quality else None,
        })
    return result


# --- reminders ------------------------------------------------------------------------------------

def open_window_reminders(*, db_session: Session, window: Window, now: datetime) -> int | None:
    """Enqueue ``reading_window_opened`` for each contract without a reading in ``window``, once per window
    across all instances (the ``reminder_runs`` row is the claim); return how many, or None if already done."""
    try:
        with db_session.begin_nested():
            db_session.add(ReminderRun(period=window.period, started_at=now))
    except IntegrityError:
        return None
    contracts = contracts_without_reading(db_session=db_session, period=window.period)
    for contract in contracts:
        enqueue(db_session, outbox, "reading_window_opened",
                {"contract": contract, "period": window.period, "opens": window.opens.isoformat(),
                 "closes": window.closes.isoformat()})
    return len(contracts)


def contracts_without_reading(*, db_session: Session, period: str) -> list[str]:
    """Return contracts whose current meter has no reading in the window of ``period``."""
    has_reading = exists().where(and_(Reading.meter_id == Meter.id, Reading.period == period))
    return list(db_session.scalars(
        select(Meter.contract).where(Meter.removed_on.is_(None), ~has_reading).distinct().order_by(Meter.contract)))
