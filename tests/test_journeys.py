"""The client's everyday journeys end to end (pay, submit a reading, add a user, update contacts), one readable test
each: real logins at identity against the simulators, tokens from its token endpoint, the gateway over HTTP, the
services over RabbitMQ and PostgreSQL, mail through the SMTP server."""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal

import pytest
import requests

from tests.support.access_helpers import (
    PASSWORD,
    invitation_link,
    now,
    open_and_set_password,
    smartid_login,
    unique_email,
)
from tests.support.helpers import bearer, csrf_of, mails
from tests.support.oidc_helpers import ISSUER, code_for, exchange, pkce
from tests.support.portal_helpers import make_household
from tests.support.stack import wait_until

HOLDER = "329999-99709"  # a Smart-ID DEMO account ("NO DOB") that holds no demo contract
SUBUSER = "020100-29990"  # the Smart-ID DEMO account "ADULT"


def portal_tokens(browser: requests.Session) -> dict[str, str]:
    """What the portal does after the login: the code flow with PKCE against identity's session."""
    verifier, challenge = pkce()
    answer = exchange(code_for(browser, (verifier, challenge)), verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def login_with_smart_id(personal_code: str) -> dict[str, str]:
    browser = requests.Session()
    assert 'id="signed-in"' in smartid_login(browser, personal_code).text
    return portal_tokens(browser)


def login_with_email(email: str, password: str) -> dict[str, str]:
    browser = requests.Session()
    form = browser.get(f"{ISSUER}/login/email", timeout=10)
    signed = browser.post(f"{ISSUER}/login/email", data={"csrf": csrf_of(form), "email": email,
                                                         "password": password}, timeout=10)
    assert 'id="signed-in"' in signed.text
    return portal_tokens(browser)


@pytest.fixture
def api(gateway_url):
    """Call the gateway over HTTP as a front end would."""

    def call(method: str, path: str, token: str, **kwargs):
        return requests.request(method, f"{gateway_url}/api/v1{path}", headers={**bearer(token),
                                                                                 **kwargs.pop("headers", {})},
                                timeout=15, **kwargs)

    return call


@pytest.fixture
def household(new_contract, new_meter, billing_sessions):
    """A contract of the Smart-ID holder, with an open invoice and a meter with a year of readings."""
    return make_household(new_contract, new_meter, billing_sessions, personal_code=HOLDER,
                          holder_name="NO DOB TESTNUMBER")


def test_the_holder_logs_in_with_smart_id_pays_the_amount_due_and_sees_it_drop_to_zero(api, household):
    contract, _ = household
    token = login_with_smart_id(HOLDER)["access_token"]
    due = api("GET", f"/contracts/{contract}/balance", token).json()["amount_due"]
    assert Decimal(due) > 0
    payment = api("POST", f"/contracts/{contract}/payments", token, json={},
                  headers={"Idempotency-Key": f"journey-{uuid.uuid4()}"}).json()
    assert payment["amount"] == due
    page = requests.get(payment["redirect_url"], timeout=10)
    assert page.status_code == 200
    requests.post(payment["redirect_url"], data={"action": "confirm"}, timeout=10)
    wait_until("the amount due to drop to zero", lambda: api(
        "GET", f"/contracts/{contract}/balance", token).json()["amount_due"] == "0.00", timeout=15)
    assert api("GET", f"/contracts/{contract}/payments/{payment['id']}", token).json()["status"] == "received"

    def paid_on_the_activity_list() -> list:
        events = api("GET", f"/contracts/{contract}/activity", token).json()["events"]
        return [e for e in events if e["action"] == "payment_made"]

    wait_until("the payment on the activity list", paid_on_the_activity_list, timeout=15)
    entry = paid_on_the_activity_list()[0]
    assert (entry["actor_role"], entry["detail"]["amount"]) == ("owner", due)


def test_the_holder_submits_a_reading_in_the_window_and_the_history_includes_it(api, household):
    contract, meter = household
    token = login_with_smart_id(HOLDER)["access_token"]
    submitted = api("POST", f"/contracts/{contract}/meters/{meter}/readings", token, json={"value": 1290})
    assert submitted.status_code == 201, submitted.text
    readings = api("GET", f"/contracts/{contract}/meters/{meter}/readings", token).json()["items"]
    assert readings[0]["value"] == 1290
    history = api("GET", f"/contracts/{contract}/consumption", token, params={
        "period_from": "2024-12-01", "period_to": date.today().isoformat(), "group_by": "year"}).json()
    total = sum(Decimal(str(i["consumption_m3"] or 0)) for i in history["items"])
    assert abs(total - 1290) <= 1  # everything since the meter was fitted at 0, the new reading included


def test_the_holder_adds_a_subuser_with_bills_who_activates_and_sees_bills_but_not_readings(api, household,
                                                                                            maildir):
    contract, meter = household
    holder = login_with_smart_id(HOLDER)["access_token"]
    email = unique_email("journey-sub")
    started = now()
    added = api("POST", f"/contracts/{contract}/users", holder, json={"name": "ADULT TESTNUMBER", "email": email,
                                                                      "level": "bills"})
    assert added.status_code == 201 and added.json()["status"] == "invited"

    invitee, _ = open_and_set_password(invitation_link(maildir, email, after=started))
    contact = smartid_login(invitee, SUBUSER)
    assert invitee.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(contact)}, timeout=10).status_code == 200

    sub = login_with_email(email, PASSWORD)["access_token"]
    assert api("GET", f"/contracts/{contract}/balance", sub).status_code == 200
    assert api("GET", f"/contracts/{contract}/invoices", sub).status_code == 200
    refused = api("GET", f"/contracts/{contract}/meters/{meter}/readings", sub)
    assert refused.status_code == 403 and refused.json()["missing_right"] == "meters:read"
    users = api("GET", f"/contracts/{contract}/users", holder).json()["items"]
    assert [(u["role"], u["status"]) for u in users] == [("owner", "active"), ("subuser", "active")]


def test_a_person_updates_their_contact_details(api, household, maildir):
    token = login_with_smart_id(HOLDER)["access_token"]
    first, second = unique_email("contact-a"), unique_email("contact-b")
    for address in (first, second):
        started = now()
        pending = api("PATCH", "/me/contact", token, json={"email": address, "phone": "26 123 456",
                                                            "language": "en"})
        assert pending.status_code == 200 and pending.json()["email_pending"] == address
        wait_until("the confirmation link", lambda a=address, s=started: mails(maildir, to=a, after=s), timeout=20)
        link = re.search(r"(http://\S+)", mails(maildir, to=address, after=started)[0]
                         .get_body(("plain",)).get_content()).group(1)
        assert requests.get(link, timeout=10).status_code == 200
    contact = api("GET", "/me/contact", token).json()
    assert (contact["email"], contact["phone"], contact["language"]) == (second, "+37126123456", "en")
    wait_until("the old address told", lambda: mails(maildir, to=first, subject="Your e-mail address was changed"),
               timeout=20)
