"""Reading submission rules, on metering's service layer against the real PostgreSQL database, at chosen
moments (the window is tested at its edges in test_metering_window.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from klients_common.errors import NotFound, ValidationFailed
from klients_metering import readings
from klients_metering.models import Reading, outbox
from klients_metering.window import RIGA

RULES = readings.Rules()
OWNER = readings.Actor("person-owner", "owner")
SUBUSER = readings.Actor("person-sub", "subuser")
IN_WINDOW = datetime(2026, 11, 28, 10, 0, tzinfo=RIGA)
# A steady 100 m³ a month through 2024 and 2025, read on the 28th.
HISTORY = [(date(y, m, 28), 100 * ((y - 2024) * 12 + m)) for y in (2024, 2025) for m in range(1, 13)]
LAST = HISTORY[-1][1]  # 2400 on 28 December 2025; 2026 has readings up to October below
HISTORY_2026 = HISTORY + [(date(2026, m, 28), LAST + 100 * m) for m in range(1, 11)]
LAST_2026 = HISTORY_2026[-1][1]
START = date(2023, 12, 28)  # installed at 0 a month before the first reading


def submit(session, meter, value, *, now=IN_WINDOW, actor=OWNER, **confirm):
    reading = readings.submit_reading(db_session=session, contract=meter.contract, serial=meter.serial_number,
                                      raw_value=value, actor=actor, rules=RULES, now=now, **confirm)
    session.commit()
    return reading


def stored(session, meter):
    return session.scalars(select(Reading).where(Reading.meter_id == meter.id).order_by(Reading.id)).all()


def events(session, meter, event_type):
    rows = session.execute(select(outbox.c.payload).where(outbox.c.event_type == event_type)
                           .order_by(outbox.c.created_at)).scalars()  # oldest first: [-1] is the latest
    return [p for p in rows if p.get("meter") == meter.serial_number]


def test_accepted_reading_is_stored_with_who_and_when_and_announced(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session:
        reading = submit(session, meter, LAST_2026 + 95)
        assert (reading.value, reading.source, reading.period) == (LAST_2026 + 95, "customer", "2026-11")
        assert (reading.submitted_by, reading.submitted_role) == ("person-owner", "owner")
        assert reading.read_on == date(2026, 11, 28)
        [event] = events(session, meter, "reading_accepted")
        assert event["consumption_m3"] == 95 and event["contract"] == meter.contract and event["event_id"]


def test_outside_the_window_says_when_it_opens_and_stores_nothing(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session, pytest.raises(ValidationFailed) as refused:
        submit(session, meter, LAST_2026 + 50, now=datetime(2026, 11, 20, 12, tzinfo=UTC))
    assert refused.value.extra["code"] == "outside_window"
    assert "27.11.2026" in refused.value.detail and "01.12.2026" in refused.value.detail
    with metering_sessions() as session:
        assert len(stored(session, meter)) == len(HISTORY_2026)
        assert [e["reason"] for e in events(session, meter, "reading_rejected")] == ["outside_window"]


def test_lower_reading_is_refused_unless_confirmed_as_a_rollover(metering_sessions, new_meter):
    meter = new_meter([(date(2026, 10, 28), 99_940)], install_reading=99_000, installed_on=date(2026, 9, 1))
    with metering_sessions() as session, pytest.raises(ValidationFailed) as refused:
        submit(session, meter, 25)
    assert refused.value.extra == {"code": "lower_than_previous", "previous": 99_940}
    with metering_sessions() as session:
        assert len(stored(session, meter)) == 1
        reading = submit(session, meter, 25, confirm_rollover=True)
        assert reading.rollover is True
        assert events(session, meter, "reading_accepted")[-1]["consumption_m3"] == 85


def test_unusually_high_needs_confirmation_then_is_flagged(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session, pytest.raises(ValidationFailed) as refused:
        submit(session, meter, LAST_2026 + 1000)  # ten times the usual month
    assert refused.value.extra["code"] == "confirmation_required"
    with metering_sessions() as session:
        assert len(stored(session, meter)) == len(HISTORY_2026)
        reading = submit(session, meter, LAST_2026 + 1000, confirm_unusual=True)
        assert reading.flagged is True
        assert [e["reading_id"] for e in events(session, meter, "reading_flagged")] == [reading.id]


def test_usual_consumption_is_not_flagged_and_short_history_is_not_judged(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    fresh = new_meter(installed_on=date(2026, 11, 1))
    with metering_sessions() as session:
        assert submit(session, meter, LAST_2026 + 150).flagged is False
        assert submit(session, fresh, 900).flagged is False


def test_resubmission_in_the_window_replaces_and_keeps_both(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session:
        first = submit(session, meter, LAST_2026 + 90)
        second = submit(session, meter, LAST_2026 + 80, actor=SUBUSER,
                        now=datetime(2026, 12, 1, 9, 30, tzinfo=RIGA))
        session.refresh(first)
        assert first.superseded_by_id == second.id
        assert (second.submitted_role, second.period) == ("subuser", "2026-11")
        current = readings.get_current_readings(db_session=session, meter=meter)
        assert current[-1].id == second.id and first not in current
        # Measured against the reading before the window, not against the replaced one.
        assert events(session, meter, "reading_accepted")[-1] == {
            **events(session, meter, "reading_accepted")[-1], "consumption_m3": 80, "replaces": first.id}


@pytest.mark.parametrize(("value", "code"), [
    (-5, "negative"), ("-5", "negative"), (12.5, "not_whole"), ("12,5", "not_whole"), ("abc", "not_a_number"),
    (None, "not_a_number"), (True, "not_a_number"), ([1], "not_a_number"), ("1e3", "not_a_number"),
    (100_000, "too_many_digits"), ("  ", "not_a_number"), (float("nan"), "not_a_number"),
])
def test_bad_values_are_refused_with_nothing_stored(metering_sessions, new_meter, value, code):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session, pytest.raises(ValidationFailed) as refused:
        submit(session, meter, value)
    assert refused.value.extra["errors"][0]["code"] == code
    with metering_sessions() as session:
        assert len(stored(session, meter)) == len(HISTORY_2026)
        assert events(session, meter, "reading_accepted") == []


def test_whole_number_given_as_text_is_accepted(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session:
        assert submit(session, meter, f" {LAST_2026 + 7} ").value == LAST_2026 + 7


def test_unknown_meter_and_meter_of_another_contract_are_not_found(metering_sessions, new_meter):
    mine, theirs = new_meter(HISTORY_2026, installed_on=START), new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session:
        for contract, serial in ((mine.contract, "NO-SUCH-METER"), (mine.contract, theirs.serial_number)):
            with pytest.raises(NotFound):
                readings.submit_reading(db_session=session, contract=contract, serial=serial, raw_value=1,
                                        actor=OWNER, rules=RULES, now=IN_WINDOW)
        assert len(stored(session, theirs)) == len(HISTORY_2026)


def test_removed_meter_takes_no_readings_and_swap_keeps_consumption(metering_sessions, new_meter):
    old = new_meter([(date(2026, 9, 28), 5100)], install_reading=5000, installed_on=date(2026, 8, 28))
    with metering_sessions() as session:
        from klients_metering.models import Meter

        row = session.get(Meter, old.id)
        row.removed_on, row.removal_reading = date(2026, 10, 13), 5150
        session.commit()
    new_meter([(date(2026, 10, 28), 160)], installed_on=date(2026, 10, 13), contract=old.contract)
    with metering_sessions() as session:
        with pytest.raises(ValidationFailed) as refused:
            submit(session, old, 5200)
        assert refused.value.extra["code"] == "meter_removed"
        history = readings.consumption_history(db_session=session, contract=old.contract,
                                               period_from=date(2026, 9, 28), period_to=date(2026, 10, 28),
                                               group_by="month", default_calorific=Decimal("10"))
    # 28 Sep – 13 Oct on the old meter (50 m³), 13 – 28 Oct on the new one (160 m³ over 15 days).
    september, october = history
    assert Decimal(september["consumption_m3"]) + Decimal(october["consumption_m3"]) == Decimal(210)
    assert (september["quality"], october["quality"]) == ("actual", "customer")


def test_operator_and_estimated_readings_keep_their_source(metering_sessions, new_meter):
    meter = new_meter(HISTORY_2026, installed_on=START)
    with metering_sessions() as session:
        estimate = readings.record_reading(db_session=session, contract=meter.contract, serial=meter.serial_number,
                                           value=LAST_2026 + 100, read_on=date(2026, 11, 28), source="estimated",
                                           now=IN_WINDOW)
        session.commit()
        assert estimate.source == "estimated" and estimate.period is None
        with pytest.raises(ValidationFailed):
            readings.record_reading(db_session=session, contract=meter.contract, serial=meter.serial_number,
                                    value=1, read_on=date(2026, 11, 29), source="hacker", now=IN_WINDOW)


def test_window_reminders_go_out_once_whatever_the_number_of_instances(metering_sessions, new_meter):
    window = RULES.window.window(2031, 5)
    waiting = new_meter(contract=None)
    first, second = metering_sessions(), metering_sessions()
    try:
        sent = readings.open_window_reminders(db_session=first, window=window, now=IN_WINDOW)
        first.commit()
        assert readings.open_window_reminders(db_session=second, window=window, now=IN_WINDOW) is None
        second.commit()
    finally:
        first.close()
        second.close()
    with metering_sessions() as session:
        announced = [p for p in session.execute(select(outbox.c.payload).where(
            outbox.c.event_type == "reading_window_opened")).scalars() if p["period"] == "2031-05"]
        assert sent == len(announced) and waiting.contract in {p["contract"] for p in announced}
        assert session.scalar(select(func.count()).select_from(outbox).where(
            outbox.c.event_type == "reading_window_opened")) >= sent


def test_operator_records_a_reading_from_the_command_line(new_meter, metering_sessions):
    import subprocess
    import sys

    meter = new_meter(HISTORY_2026, installed_on=START)
    cli = [sys.executable, "-m", "klients_metering.cli", "record-reading", meter.contract, meter.serial_number]
    done = subprocess.run([*cli, str(LAST_2026 + 60), "--date", "2026-11-15", "--operator", "olga"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    refused = subprocess.run([*cli, "5", "--date", "2026-11-16"], capture_output=True, text=True, check=False)
    assert refused.returncode == 2 and "lower than the previous" in refused.stderr
    with metering_sessions() as session:
        last = stored(session, meter)[-1]
        assert (last.value, last.source, last.submitted_by, last.read_on) == (
            LAST_2026 + 60, "operator", "olga", date(2026, 11, 15))
