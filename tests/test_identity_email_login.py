"""The e-mail method: registration proven by the register's e-mail address (the link arrives over real
SMTP through notifications), password rules, login at assurance low, reset, single-use links, no
enumeration."""

from __future__ import annotations

import time

import pytest
import requests

from klients_common.auth import TokenVerifier, TrustedIssuer
from tests.support.email_login import link_in, mail_to, set_password
from tests.support.helpers import csrf_of, mails
from tests.support.oidc_helpers import ISSUER, authorize, exchange, pkce, redirect_params

pytestmark = pytest.mark.usefixtures("stack")
ANNA = "anna.kalnina@demo.klients.lv"  # the register's e-mail for LVG-100004


def post_form(browser: requests.Session, path: str, **fields: str) -> requests.Response:
    page = browser.get(f"{ISSUER}{path}", timeout=10)
    return browser.post(f"{ISSUER}{path}", data={"csrf": csrf_of(page), **fields}, allow_redirects=False, timeout=10)


def test_register_by_the_registers_email_then_log_in_at_low_assurance(maildir):
    started = time.time()
    browser = requests.Session()
    sent = post_form(browser, "/login/email/register", email=ANNA.upper(), contract="lvg-100004")
    assert sent.status_code == 200 and 'id="sent"' in sent.text
    message = mail_to(maildir, ANNA, started)
    assert "Apstipriniet" in message["Subject"]
    link = link_in(message)
    assert link in message.get_body(("html",)).get_content()
    assert "derīga līdz" in message.get_body(("plain",)).get_content()

    weak = set_password(browser, link, "parole123456")
    assert weak.status_code == 422 and "vienkārša" in weak.text
    mismatch = set_password(browser, link, "Zaļš-kalns-2026!", "Zaļš-kalns-2027!")
    assert mismatch.status_code == 422
    done = set_password(browser, link, "Zaļš-kalns-2026!")
    assert done.status_code == 200 and 'id="signed-in"' in done.text

    reused = requests.get(link, timeout=10)
    assert reused.status_code == 400 and "izmantota" in reused.text

    client = requests.Session()
    verifier, challenge = pkce()
    to_login = authorize(client, code_challenge=challenge, code_challenge_method="S256")
    assert "/login" in to_login.headers["Location"]
    wrong = post_form(client, "/login/email", email=ANNA, password="not-the-password-at-all")
    assert wrong.status_code == 401 and "Nepareizs" in wrong.text
    ok = post_form(client, "/login/email", email=ANNA, password="Zaļš-kalns-2026!")
    back = client.get(f"{ISSUER}{ok.headers['Location'].removeprefix(ISSUER)}", allow_redirects=False, timeout=10)
    token = exchange(redirect_params(back)["code"], verifier).json()
    access = TokenVerifier([TrustedIssuer(ISSUER, f"{ISSUER}/jwks.json", "klients-api")]).verify(token["access_token"])
    assert access.claims["acr"] == "http://eidas.europa.eu/LoA/low" and access.claims["amr"] == ["pwd"]
    assert access.grants["LVG-100004"].role == "owner"

    # Password reset: the old password stops working, the new one works.
    started = time.time()
    assert 'id="sent"' in post_form(requests.Session(), "/login/email/forgot", email=ANNA).text
    reset_link = link_in(mail_to(maildir, ANNA, started))
    assert set_password(requests.Session(), reset_link, "Jauns-Ozols-2026?").status_code == 200
    assert post_form(requests.Session(), "/login/email", email=ANNA, password="Zaļš-kalns-2026!").status_code == 401
    fresh = post_form(requests.Session(), "/login/email", email=ANNA, password="Jauns-Ozols-2026?")
    assert fresh.status_code == 200 and 'id="signed-in"' in fresh.text


def test_someone_elses_contract_or_address_sends_nothing_and_says_the_same(maildir):
    started = time.time()
    wrong_address = post_form(requests.Session(), "/login/email/register", email="intruder@example.lv",
                              contract="LVG-100003")
    no_contract = post_form(requests.Session(), "/login/email/register", email="intruder@example.lv",
                            contract="LVG-999999")
    assert wrong_address.status_code == no_contract.status_code == 200
    assert 'id="sent"' in wrong_address.text and 'id="sent"' in no_contract.text
    unknown_reset = post_form(requests.Session(), "/login/email/forgot", email="nobody@example.lv")
    assert 'id="sent"' in unknown_reset.text
    time.sleep(2)
    recipients = [m["To"] for m in mails(maildir, after=started)]
    assert "intruder@example.lv" not in recipients and "nobody@example.lv" not in recipients


def test_made_up_link_tells_what_to_do():
    response = requests.get(f"{ISSUER}/login/email/register/{'A' * 43}", timeout=10)
    assert response.status_code == 400 and "Pieprasiet jaunu saiti" in response.text


def test_an_email_account_is_linked_to_the_holders_strong_login(maildir, new_contract):
    """The e-mail account proved the register's address of a contract; a strong login of that contract's
    holder takes its password login over, so e-mail + password afterwards reaches the same person."""
    from klients_identity.models import Grant, PasswordLogin
    from tests.support.access_helpers import smartid_login, unique_email
    from tests.support.stack import identity_session

    address = unique_email("linked")
    contract = new_contract(email=address, personal_code="329999-99901").number
    started = time.time()
    browser = requests.Session()
    post_form(browser, "/login/email/register", email=address, contract=contract)
    assert set_password(browser, link_in(mail_to(maildir, address, started)), "Saulains-rīts-2026").status_code == 200
    with identity_session() as session:
        email_person = session.get(PasswordLogin, address).person_id

    assert 'id="signed-in"' in smartid_login(requests.Session(), "329999-99901").text
    with identity_session() as session:
        strong_person = session.get(PasswordLogin, address).person_id
        assert strong_person != email_person
        assert session.query(Grant).filter_by(person_id=email_person, status="active").count() == 0
        assert session.query(Grant).filter_by(person_id=strong_person, contract=contract, status="active").count() == 1
    ok = post_form(requests.Session(), "/login/email", email=address, password="Saulains-rīts-2026")
    assert ok.status_code == 200 and 'id="signed-in"' in ok.text
