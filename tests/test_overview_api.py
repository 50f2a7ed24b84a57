"""A contract's overview in one call (``GET /api/v1/contracts/{contract}/overview``): the amount to pay with
its next due date, the meters with their last reading and the reading window (metering's own window rules,
Latvian holidays counted), each part only for the rights the caller holds."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from klients_metering.window import WindowRules, window_state
from tests.support.helpers import bearer
from tests.support.portal_helpers import make_household

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture
def household(new_contract, new_meter, billing_sessions):
    return make_household(new_contract, new_meter, billing_sessions)


def test_the_overview_carries_balance_meters_and_the_window_together(gateway, household, mint):
    contract, serial = household
    answer = gateway.get(f"/api/v1/contracts/{contract}/overview", headers=bearer(mint({contract: "owner"})))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["contract"]["number"] == contract and body["contract"]["role"] == "owner"
    assert "users:manage" in body["rights"] and "meters:read" in body["rights"]
    balance = gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(mint({contract: "owner"})))
    expected = balance.get_json()
    assert {k: body["balance"][k] for k in ("amount_due", "overdue", "credit")} == {
        k: expected[k] for k in ("amount_due", "overdue", "credit")}
    assert body["balance"]["amount_due"] != "0.00"
    assert body["balance"]["next_due_date"] == expected["open_invoices"][0]["due_date"]
    [meter] = body["meters"]
    assert meter["serial_number"] == serial
    assert (meter["last_reading"]["value"], meter["last_reading"]["read_on"]) == (1200, "2025-12-28")
    # The window as metering's rules give it (the suite opens it on today's date in Riga: open now).
    today = datetime.now(UTC)
    window = body["reading_window"]
    open_day = int(os.environ["READING_WINDOW_OPEN_DAY"])
    assert window == window_state(WindowRules(open_day=open_day), today) or \
        window == window_state(WindowRules(open_day=open_day), today + timedelta(seconds=5))
    assert window["open"] is True and datetime.fromisoformat(window["closes"]) > today


def test_a_bills_only_user_gets_no_meters_nor_window(gateway, household, mint):
    contract, _ = household
    token = mint({contract: ("subuser", "bills")})
    body = gateway.get(f"/api/v1/contracts/{contract}/overview", headers=bearer(token)).get_json()
    assert body["rights"] == ["bills:pay", "bills:read"]
    assert "meters" not in body and "reading_window" not in body
    assert body["balance"]["amount_due"] != "0.00"


def test_window_state_names_the_next_window_when_closed():
    rules = WindowRules(open_day=27)
    # 2026-12-10 noon Riga: closed; the next window opens on 27 December and closes after the first working day
    # of January 2027 (1 January is a holiday, 2 and 3 a weekend: Monday 4 January is that day).
    state = window_state(rules, datetime(2026, 12, 10, 10, tzinfo=UTC))
    assert state == {"open": False, "period": "2026-12", "opens": "2026-12-27T00:00:00+02:00",
                     "closes": "2027-01-05T00:00:00+02:00"}
    state = window_state(rules, datetime(2027, 1, 4, 20, tzinfo=UTC))  # 22:00 in Riga on the last day
    assert state["open"] is True and state["period"] == "2026-12"
