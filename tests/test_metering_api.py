"""Meter readings and consumption through the gateway, metering and billing on real RabbitMQ and
PostgreSQL: submitting meter readings and looking at consumption history (docs/domain.md, "Meter readings")."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date

import pytest
from sqlalchemy import select

from klients_billing.models import MeteredConsumption
from klients_common.errors import Forbidden
from klients_common.riga import riga_today
from tests.support.helpers import bearer
from tests.support.stack import publish_event, wait_until

TODAY = riga_today()
HISTORY = [(date(2025, m, 28), 100 * m) for m in range(1, 13)]


@pytest.fixture
def household(new_meter, mint):
    """A contract with a year of readings, and tokens for its owner and two kinds of sub-user."""
    meter = new_meter(HISTORY, installed_on=date(2024, 12, 28))
    c = meter.contract
    return meter, {"owner": mint({c: "owner"}, subject="p-owner"),
                   "readings": mint({c: ("subuser", "bills_readings")}, subject="p-sub"),
                   "bills": mint({c: ("subuser", "bills")}, subject="p-bills")}


def consumption_row(billing_sessions, contract):
    with billing_sessions() as session:
        return session.scalars(select(MeteredConsumption).where(MeteredConsumption.contract == contract)).all()


def test_subuser_submits_a_reading_it_shows_in_history_and_reaches_billing(gateway, household, billing_sessions):
    meter, tokens = household
    url = f"/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings"
    response = gateway.post(url, json={"value": 1200 + 40}, headers=bearer(tokens["readings"]))
    assert response.status_code == 201, response.get_json()
    created = response.get_json()
    assert (created["value"], created["source"], created["submitted_role"]) == (1240, "customer", "subuser")

    listed = gateway.get(url, headers=bearer(tokens["owner"])).get_json()["items"]
    assert listed[0]["id"] == created["id"] and listed[0]["submitted_by_you"] is False

    history = gateway.get(f"/api/v1/contracts/{meter.contract}/consumption",
                          query_string={"period_from": "2025-12-01", "period_to": f"{TODAY:%Y-%m}-01",
                                        "group_by": "year"},
                          headers=bearer(tokens["owner"])).get_json()
    total = sum(float(i["consumption_m3"] or 0) for i in history["items"])
    assert total > 0 and history["group_by"] == "year"

    wait_until("billing to record the reading", lambda: consumption_row(billing_sessions, meter.contract), timeout=10)
    [row] = consumption_row(billing_sessions, meter.contract)
    assert (row.reading_id, row.consumption_m3) == (created["id"], 40)


def test_consumption_by_month_with_kwh_year_on_year_and_csv(gateway, new_meter, mint, metering_sessions):
    from klients_metering.models import CalorificValue

    with metering_sessions() as session:
        if session.get(CalorificValue, "2012-02") is None:
            session.add(CalorificValue(period="2012-02", kwh_per_m3=11))
            session.commit()
    readings = [(date(y, m, 1), 100 * ((y - 2011) * 12 + m)) for y in (2011, 2012) for m in range(1, 13)]
    meter = new_meter([*readings, (date(2013, 1, 1), 2500)], installed_on=date(2010, 12, 1))
    token = mint({meter.contract: "owner"})
    query = {"period_from": "2012-01-01", "period_to": "2012-04-01", "group_by": "month"}
    body = gateway.get(f"/api/v1/contracts/{meter.contract}/consumption", query_string=query,
                       headers=bearer(token)).get_json()
    assert [(i["interval_start"], i["consumption_m3"], i["consumption_kwh"], i["previous_year_m3"], i["quality"])
            for i in body["items"]] == [
        ("2012-01-01", "100.000", "1055.00", "100.000", "customer"),  # default 10.55 kWh/m³
        ("2012-02-01", "100.000", "1100.00", "100.000", "customer"),  # the table's 11.00 for February
        ("2012-03-01", "100.000", "1055.00", "100.000", "customer")]

    exported = gateway.get(f"/api/v1/contracts/{meter.contract}/consumption",
                           query_string={**query, "format": "csv"}, headers=bearer(token))
    assert exported.mimetype == "text/csv"
    assert "attachment" in exported.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [r["consumption_kwh"] for r in rows] == ["1055.00", "1100.00", "1055.00"]
    assert rows[0]["interval_end"] == "2012-02-01" and rows[0]["quality"] == "customer"


def test_subuser_with_level_bills_is_refused_by_gateway_and_by_metering(gateway, household, rpc):
    meter, tokens = household
    base = f"/api/v1/contracts/{meter.contract}"
    for method, path in (("get", f"{base}/meters"), ("get", f"{base}/meters/{meter.serial_number}/readings"),
                         ("post", f"{base}/meters/{meter.serial_number}/readings"),
                         ("get", f"{base}/consumption?period_from=2025-01-01&period_to=2025-02-01")):
        response = getattr(gateway, method)(path, json={"value": 1300}, headers=bearer(tokens["bills"]))
        assert response.status_code == 403, path
    with pytest.raises(Forbidden):
        rpc.call("metering", "submit_reading", meter.contract, meter.serial_number, 1300,
                 context={"authorization": f"Bearer {tokens['bills']}"})


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"value": "abc"}, 422, "value"),
    ({"value": -1}, 422, "value"),
    ({"value": 12.5}, 422, "value"),
    ({"value": 1_000_000}, 422, "value"),
    ({}, 422, "value"),
    ({"value": 1300, "contract": "LVG-100002"}, 422, "contract"),
    ({"value": 1300, "submitted_role": "owner"}, 422, "submitted_role"),
    ({"value": 1300, "confirm_rollover": "yes"}, 422, "confirm_rollover"),
    ("not json", 422, None),
])
def test_bad_submissions_get_a_clear_problem_and_change_nothing(gateway, household, body, status, field):
    meter, tokens = household
    url = f"/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings"
    kwargs = {"data": body, "content_type": "text/plain"} if isinstance(body, str) else {"json": body}
    response = gateway.post(url, headers=bearer(tokens["owner"]), **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    if field:
        assert field in {e["field"] for e in problem["errors"]}
    assert len(gateway.get(url, headers=bearer(tokens["owner"])).get_json()["items"]) == len(HISTORY)


def test_unknown_meter_or_another_contracts_meter_is_404(gateway, household, new_meter):
    meter, tokens = household
    other = new_meter(HISTORY, installed_on=date(2024, 12, 28))
    for serial in ("NO-SUCH", other.serial_number):
        response = gateway.post(f"/api/v1/contracts/{meter.contract}/meters/{serial}/readings",
                                json={"value": 1300}, headers=bearer(tokens["owner"]))
        assert response.status_code == 404
    response = gateway.get(f"/api/v1/contracts/{other.contract}/consumption", headers=bearer(tokens["owner"]),
                           query_string={"period_from": "2025-01-01", "period_to": "2025-02-01"})
    assert response.status_code == 404


@pytest.mark.parametrize(("query", "fields"), [
    ({"period_from": "2025-13-01", "period_to": "2026-01-01"}, {"period_from"}),
    ({"period_from": "2025-01-01", "period_to": "2024-01-01"}, {"period_to"}),
    ({"period_from": "2025-01-01", "period_to": "2026-01-01", "group_by": "week"}, {"group_by"}),
    ({}, {"period_from", "period_to"}),
    ({"period_from": "1900-01-01", "period_to": "2026-01-01"}, {"period_from"}),
])
def test_bad_consumption_queries_list_each_bad_field(gateway, household, query, fields):
    meter, tokens = household
    response = gateway.get(f"/api/v1/contracts/{meter.contract}/consumption", query_string=query,
                           headers=bearer(tokens["owner"]))
    assert response.status_code == 422
    assert {e["field"] for e in response.get_json()["errors"]} == fields


def test_lower_reading_asks_to_confirm_a_rollover(gateway, new_meter, mint):
    meter = new_meter([(date(2025, 10, 28), 99_800), (date(2025, 11, 28), 99_900)],
                      installed_on=date(2025, 9, 28), install_reading=99_700)
    url = f"/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings"
    owner = bearer(mint({meter.contract: "owner"}))
    refused = gateway.post(url, json={"value": 50}, headers=owner)
    assert refused.status_code == 422 and refused.get_json()["code"] == "lower_than_previous"
    accepted = gateway.post(url, json={"value": 50, "confirm_rollover": True}, headers=owner)
    assert accepted.status_code == 201 and accepted.get_json()["rollover"] is True


def test_the_same_reading_event_delivered_twice_is_consumed_once(stack, billing_sessions):
    """At-least-once delivery: billing applies a redelivered reading_accepted once (by event id)."""
    contract = f"T-{uuid.uuid4().hex[:10].upper()}"
    event = {"event_id": str(uuid.uuid4()), "contract": contract, "meter": "S-DUP", "reading_id": 1, "value": 140,
             "read_on": "2026-11-28", "period": "2026-11", "source": "customer", "consumption_m3": 40,
             "consumption_kwh": "420.000", "rollover": False, "flagged": False, "submitted_by": "p",
             "submitted_role": "owner",
             "submitted_at": "2026-11-28T09:00:00+00:00", "replaces": None}
    later = {**event, "event_id": str(uuid.uuid4()), "reading_id": 2, "consumption_m3": 45,
             "submitted_at": "2026-11-29T09:00:00+00:00", "replaces": 1}
    for payload in (event, event, later, event):
        publish_event("reading_accepted", payload)
    wait_until("billing to apply the later reading",
               lambda: [r.consumption_m3 for r in consumption_row(billing_sessions, contract)] == [45], timeout=10)
    # Give the late duplicate time to arrive: it must not bring the older figure back.
    publish_event("reading_accepted", event)
    import time

    time.sleep(1)
    assert [r.consumption_m3 for r in consumption_row(billing_sessions, contract)] == [45]


def test_malformed_event_is_dropped_and_billing_keeps_working(stack, rpc, mint, billing_sessions):
    publish_event("reading_accepted", {"contract": 12, "nonsense": True})
    token = mint({"LVG-100001": "owner"})
    assert rpc.call("billing", "get_contract", "LVG-100001", context={"authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"value": "12a"}, "value", "not_a_number"), ({"value": "abc"}, "value", "not_a_number"),
    ({"value": 12.5}, "value", "not_whole"), ({"value": "12.5"}, "value", "not_whole"),
    ({"value": -5}, "value", "negative"), ({"value": "-5"}, "value", "negative"),
    ({"value": True}, "value", "not_a_number"), ({"value": None}, "value", "not_a_number"),
    ({"value": [1]}, "value", "not_a_number"), ({"value": 10**30}, "value", "too_many_digits"),
    ({"value": "9" * 40}, "value", "too_many_digits"), ({}, "value", "required"),
    ({"value": 1240, "confirm_rollover": "true"}, "confirm_rollover", "not_boolean"),
    ({"value": 1240, "confirm_unusual": 1}, "confirm_unusual", "not_boolean"),
    ({"value": 1240, "confirm_unusual": None}, "confirm_unusual", "not_boolean"),
    ({"value": 1240, "note": "x"}, "note", "unknown_field"),
])
def test_malformed_readings_get_the_documented_codes(gateway, household, body, field, code):
    meter, tokens = household
    url = f"/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings"
    refused = gateway.post(url, json=body, headers=bearer(tokens["owner"]))
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert [(e["field"], e["code"]) for e in refused.get_json()["errors"]] == [(field, code)]
    assert all(e["message"] and "is not of type" not in e["message"] and "True" not in e["message"]
               for e in refused.get_json()["errors"])


def test_a_reading_sent_as_a_string_of_digits_is_accepted(gateway, household):
    meter, tokens = household
    url = f"/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings"
    accepted = gateway.post(url, json={"value": "1240"}, headers=bearer(tokens["owner"]))
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["value"] == 1240
    huge = gateway.post(url, content_type="application/json", data='{"value": 1e400}', headers=bearer(tokens["owner"]))
    assert [(e["field"], e["code"]) for e in huge.get_json()["errors"]] == [("value", "too_many_digits")]
