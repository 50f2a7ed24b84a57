"""Every take-up of access is announced: the contract's holder hears of it (at their contact e-mail at identity,
or else at the client register's address) and so does the person who invited, when that is someone else, each
in their own language. One test per path: an additional user invited by a delegate, a mandate the holder gave
online, a paper application an operator approved. Checked in the development SMTP server's mail files."""

from __future__ import annotations

import time
from datetime import timedelta

import requests

from klients_common.riga import riga_today
from tests.support.access_helpers import (
    invitation_link,
    now,
    open_and_set_password,
    plant_person,
    record,
    smartid_login,
    unique_email,
)
from tests.support.helpers import bearer, csrf_of, mails
from tests.support.keycloak import operator_browser
from tests.support.oidc_helpers import ISSUER
from tests.support.stack import wait_until

SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"
LV = "Uzaicinājums pieņemts: līgums {}"
EN = "Invitation accepted: contract {}"


def take_up(link: str, personal_code: str) -> None:
    """Open the link, set the password (if asked), confirm with Smart-ID and finish."""
    browser, _ = open_and_set_password(link)
    contact = smartid_login(browser, personal_code)
    assert contact.status_code == 200, contact.text[:300]
    done = browser.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(contact)}, timeout=10)
    assert done.status_code == 200, done.text[:300]


def notice(maildir, to: str, subject: str, after: float) -> str:
    wait_until(f"the take-up notice to {to}", lambda: mails(maildir, to=to, subject=subject, after=after), timeout=20)
    return mails(maildir, to=to, subject=subject, after=after)[0].get_body(("plain",)).get_content()


def test_a_subuser_invited_by_a_delegate_is_announced_to_the_holder_and_the_delegate(gateway, new_contract, mint,
                                                                                     maildir):
    contract = new_contract().number
    holder_email, delegate_email = unique_email("holder"), unique_email("delegate")
    plant_person(contract, email=holder_email, language="en", given_name="Ērika", family_name="Šķēle")
    delegate, _ = plant_person(contract, "delegate", email=delegate_email, language="lv")
    token = mint({contract: "delegate"}, subject=delegate, acr=SUBSTANTIAL, auth_time=int(time.time()))
    invitee = unique_email("sub")
    started = now()
    created = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token),
                           json={"name": "Ādolfs Ēvalds", "email": invitee, "level": "bills"})
    assert created.status_code == 201, created.get_json()
    take_up(invitation_link(maildir, invitee, after=started), "320000-10003")
    assert "NEW CODE TESTNUMBER" in notice(maildir, holder_email, EN.format(contract), started)
    assert "NEW CODE TESTNUMBER" in notice(maildir, delegate_email, LV.format(contract), started)


def test_a_mandate_taken_up_is_announced_to_the_holder_at_the_register_address(gateway, new_contract, mint, maildir):
    on_file = unique_email("register")
    contract = new_contract(email=on_file).number
    holder, _ = plant_person(contract, email=None, language="en")  # no contact e-mail at identity
    token = mint({contract: "owner"}, subject=holder, acr=SUBSTANTIAL, auth_time=int(time.time()))
    delegate_email = unique_email("mandate")
    started = now()
    granted = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json={
        "name": "Laura Ozoliņa", "email": delegate_email, "role": "delegate", "personal_code": "320000-10003",
        "valid_until": (riga_today() + timedelta(days=200)).isoformat()})
    assert granted.status_code == 201, granted.get_json()
    take_up(invitation_link(maildir, delegate_email, after=started), "320000-10003")
    assert contract in notice(maildir, on_file, EN.format(contract), started)


def test_a_paper_application_taken_up_is_announced_to_the_holder_at_the_register_address(staff, new_contract,
                                                                                         maildir):
    on_file = unique_email("register")
    contract = new_contract(email=on_file).number  # the holder has never signed in to identity
    operator = operator_browser()
    invitee = unique_email("paper-sub")
    recorded = record(operator, contract, kind="subuser", level="bills", personal_code="", valid_until="",
                      email=invitee)
    started = now()
    approved = operator.post(f"{recorded.url}/approve", data={"csrf": csrf_of(recorded)}, timeout=10)
    assert approved.status_code == 200
    take_up(invitation_link(maildir, invitee, after=started), "320000-10003")
    assert contract in notice(maildir, on_file, LV.format(contract), started)


def test_an_english_invitation_opens_english_pages(staff, new_contract, maildir):
    contract = new_contract().number
    operator = operator_browser()
    operator.get(f"{ISSUER}/operator/?lang=en", timeout=10)  # the operator works in English
    invitee = unique_email("english")
    recorded = record(operator, contract, kind="subuser", level="bills", personal_code="", valid_until="",
                      email=invitee)
    started = now()
    operator.post(f"{recorded.url}/approve", data={"csrf": csrf_of(recorded)}, timeout=10)
    wait_until("the invitation", lambda: mails(maildir, to=invitee, after=started), timeout=20)
    text = mails(maildir, to=invitee, after=started)[0].get_body(("plain",)).get_content()
    assert "has invited you" in text  # written in English ...
    link = next(word for word in text.split() if "/invite/" in word)
    assert link.endswith("?lang=en")  # ... and its link says so
    browser = requests.Session()  # a browser that never chose a language
    page = browser.get(link, timeout=10)
    assert page.status_code == 200 and '<html lang="en">' in page.text
