"""The client's everyday journeys in a real browser (Debian's Chromium), each starting at the portal's address as a
person would: the Smart-ID holder logs in, pays to zero and sees the payment received, then logs out; submits
a reading, sees it in the history and switches language. No response the browser gets, and no cookie it
keeps, holds a token."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import shot, take_up_with_the_bank
from tests.support.portal_helpers import JWT, PORTAL_URL, make_household, secrets_of, session_rows

pytestmark = pytest.mark.usefixtures("stack")
HOLDER = "329999-99709"  # a Smart-ID DEMO account that holds no demo contract


@pytest.fixture
def household(new_contract, new_meter, billing_sessions):
    return make_household(new_contract, new_meter, billing_sessions, personal_code=HOLDER,
                          holder_name="NO DOB TESTNUMBER")


class Seen:
    """Everything the browser received: each answer's URL, headers and (text) body."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, str]] = []

    def record(self, response: Any) -> None:
        try:
            body = response.text() if response.status < 300 or response.status >= 400 else ""
        except Exception:
            body = ""
        headers = "\n".join(f"{k}: {v}" for k, v in response.all_headers().items())
        self.answers.append((response.url, headers + "\n" + body))


@pytest.fixture
def person(chromium: Browser) -> Iterator[tuple[Page, Seen]]:
    context = chromium.new_context(locale="lv-LV")
    page = context.new_page()
    seen = Seen()
    page.on("response", seen.record)
    yield page, seen
    tokens = [t for row in session_rows() for t in secrets_of(row)]
    for url, text in seen.answers:
        assert not JWT.search(text), url
        assert all(token not in text for token in tokens), url
    for cookie in context.cookies():
        assert not JWT.search(cookie["value"]) and all(token not in cookie["value"] for token in tokens)
    context.close()


def log_in_with_smart_id(page: Page, contract: str) -> None:
    """From the portal's start page through identity's Smart-ID login to the contract's overview."""
    page.goto(PORTAL_URL)
    page.locator("#login").click()
    page.get_by_role("link", name="Smart-ID").click()
    page.get_by_label("Personas kods").fill(HOLDER)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(PORTAL_URL) + r"/c(ontracts|/).*"), timeout=30_000)
    if "/contracts" in page.url:  # the holder has several contracts: pick this one
        page.get_by_role("link", name=contract).click()
    page.wait_for_url(f"{PORTAL_URL}/c/{contract}")
    if page.locator("html").get_attribute("lang") != "lv":  # the person chose English in another test
        page.locator("#lang-switch").click()
        page.wait_for_function("document.documentElement.lang === 'lv'")


def test_the_smart_id_holder_pays_to_zero_sees_it_received_and_logs_out(person, household):
    page, _ = person
    contract, _ = household
    log_in_with_smart_id(page, contract)
    due = page.locator("#amount-due").inner_text()
    assert due != "0,00\u00a0€"
    shot(page, "portal/overview-lv")
    page.locator("#pay").click()
    page.locator("#choice-due").check()
    page.locator("#pay-go").click()
    page.get_by_role("button", name=re.compile("Confirm")).click()  # the payment provider's page
    page.wait_for_url(f"{PORTAL_URL}/payment-done*")
    page.locator("#payment-status[data-status=received]").wait_for(timeout=30_000)
    shot(page, "portal/payment-received-lv")
    page.locator("#back").click()
    assert page.locator("#amount-due").inner_text() == "0,00\u00a0€"
    assert page.locator("#pay").count() == 0
    page.locator("#logout").click()
    page.locator("#signed-out").wait_for(timeout=15_000)
    assert page.url.startswith(f"{PORTAL_URL}/")
    page.goto(f"{PORTAL_URL}/c/{contract}")
    assert page.url.startswith("http://127.0.0.1:18001/")  # a new login is needed: the session is gone


def test_the_holder_submits_a_reading_sees_it_in_the_history_and_switches_language(person, household):
    page, _ = person
    contract, _ = household
    log_in_with_smart_id(page, contract)
    page.locator("#submit-reading").click()
    page.get_by_label("Rādījums (m³, veseli skaitļi)").fill("1290")
    page.get_by_role("button", name="Nosūtīt").click()
    assert "1290" in page.locator("#flash").inner_text()
    first = page.locator("table.history tbody tr").first
    assert "1290" in first.inner_text() and "jūs" in first.inner_text()
    shot(page, "portal/readings-lv")
    page.locator("#lang-switch").click()
    page.wait_for_url(f"{PORTAL_URL}/c/{contract}/readings")
    assert page.locator("h1").inner_text() == "Meter readings"
    assert "you" in page.locator("table.history tbody tr").first.inner_text()
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "portal/readings-en")
    page.get_by_role("link", name="Consumption").click()
    assert page.locator("svg.chart rect.bar").count() > 0
    shot(page, "portal/consumption-en")


def test_a_bills_only_user_invited_in_the_portal_sees_bills_only_and_loses_the_contract_when_revoked(
        person, chromium, new_contract, new_meter, billing_sessions, maildir):
    from tests.support.access_helpers import invitation_link, now, unique_email
    from tests.support.helpers import csrf_of
    from tests.support.portal_helpers import portal_login

    contract, _ = make_household(new_contract, new_meter, billing_sessions)
    holder, _ = portal_login(((contract, "owner"),), next_path=f"/c/{contract}/users")
    users = holder.get(f"{PORTAL_URL}/c/{contract}/users", timeout=20)
    email = unique_email("portal-bills")
    started = now()
    invited = holder.post(f"{PORTAL_URL}/c/{contract}/users", data={
        "csrf": csrf_of(users), "name": "Ģirts Čakste", "email": email, "level": "bills"}, timeout=20)
    assert "Uzaicinājums ir nosūtīts." in invited.text
    link = invitation_link(maildir, email, after=started)

    page, _ = person
    page.goto(link)
    take_up_with_the_bank(page, "+371 20 000 003")

    page.goto(PORTAL_URL)
    page.locator("#login").click()  # identity's session is there: straight back to the portal
    page.wait_for_url(re.compile(re.escape(PORTAL_URL) + r"/c(ontracts|/).*"), timeout=30_000)
    if "/contracts" in page.url:
        page.get_by_role("link", name=contract).click()
    page.wait_for_url(f"{PORTAL_URL}/c/{contract}")
    if page.locator("html").get_attribute("lang") != "lv":  # the person chose English in another test
        page.locator("#lang-switch").click()
        page.wait_for_function("document.documentElement.lang === 'lv'")
    assert page.locator("#amount-due").count() == 1 and page.locator("#pay").count() == 1
    assert page.locator("#submit-reading").count() == 0 and page.locator("#users-link").count() == 0
    page.locator("#pay").click()  # bills:pay is part of the bills level
    assert page.locator("#pay-form").count() == 1
    shot(page, "portal/subuser-pay-lv")

    listing = holder.get(f"{PORTAL_URL}/c/{contract}/users", timeout=20)
    # The invitee's row is the only one with a link (the holder's own is not theirs to change). Its e-mail is
    # the person's contact address, which is the invited one only if the bank's demo person was new.
    grants = set(re.findall(rf'/c/{re.escape(contract)}/users/([A-Za-z0-9-]+)"', listing.text))
    assert len(grants) == 1, grants
    grant = grants.pop()
    revoked = holder.post(f"{PORTAL_URL}/c/{contract}/users/{grant}", data={
        "csrf": csrf_of(listing), "action": "revoke"}, timeout=20)
    assert "Piekļuve ir atsaukta." in revoked.text
    page.goto(f"{PORTAL_URL}/c/{contract}")  # the open session loses the contract on the next page
    assert page.locator("h1").inner_text() == "Nav atrasts"


def test_a_contact_e_mail_change_asks_for_a_stronger_login_then_is_done_once_and_waits_for_its_link(
        person, household, maildir):
    from sqlalchemy import select

    from klients_identity.login.passwords import hash_password
    from klients_identity.models import PasswordLogin, Person
    from tests.support.access_helpers import PASSWORD, unique_email
    from tests.support.helpers import mails
    from tests.support.stack import identity_session, wait_until

    page, seen = person
    # household: the holder's contract, which the Smart-ID login below needs
    login_email, new_email = unique_email("portal-pwd"), unique_email("portal-new")
    with identity_session() as session:  # the holder also logs in with e-mail and password (assurance low)
        holder = session.scalar(select(Person).where(Person.personal_code == HOLDER))
        if holder is None:
            holder = Person(id=str(uuid.uuid4()), given_name="NO DOB", family_name="TESTNUMBER",
                            personal_code=HOLDER, language="lv")
            session.add(holder)
            session.flush()
        holder.language = "lv"  # the page after the re-login speaks it (an earlier test may set "en")
        session.add(PasswordLogin(email=login_email, person_id=holder.id, password_hash=hash_password(PASSWORD)))
    page.goto(PORTAL_URL)
    page.locator("#login").click()
    page.get_by_role("link", name="E-pasts un parole").click()
    page.get_by_label("E-pasts / E-mail").fill(login_email)
    page.get_by_label("Parole").fill(PASSWORD)
    page.get_by_role("button", name="Pieslēgties").click()
    page.wait_for_url(re.compile(re.escape(PORTAL_URL) + r"/c(ontracts|/).*"), timeout=30_000)
    page.goto(f"{PORTAL_URL}/contact")
    if page.locator("html").get_attribute("lang") != "lv":
        page.locator("#lang-switch").click()
        page.wait_for_function("document.documentElement.lang === 'lv'")
    page.locator("#email").fill(new_email)
    page.locator("#save-contact").click()
    # The API asks for a substantial login: the portal sends the person through identity's strong methods.
    page.get_by_role("link", name="Smart-ID").click()
    assert any("/authorize?" in url and "acr_values=" in url for url, _ in seen.answers)
    page.get_by_label("Personas kods").fill(HOLDER)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{PORTAL_URL}/contact", timeout=30_000)
    assert "nosūtījām saiti" in page.locator("#flash").inner_text()
    assert new_email in page.locator("#email-pending").inner_text()
    shot(page, "portal/contact-pending-lv")
    wait_until("the verification mail", lambda: mails(maildir, to=new_email), timeout=20)
    page.reload()  # the change was carried out once: no second attempt, no second mail
    assert page.locator("#flash").count() == 0 and new_email in page.locator("#email-pending").inner_text()
    assert len(mails(maildir, to=new_email)) == 1
