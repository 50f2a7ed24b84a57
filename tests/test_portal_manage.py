"""The portal's users and contact pages over HTTP: invite, change, resend and revoke an additional user;
the step-up re-login the API asks for (then the change is carried out once); contact details."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from klients_identity.models import LoginSession
from tests.support.access_helpers import unique_email
from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import ISSUER, logged_in_browser
from tests.support.portal_helpers import PORTAL_URL, portal_login
from tests.support.stack import identity_session

pytestmark = pytest.mark.usefixtures("stack")
LOW = "http://eidas.europa.eu/LoA/low"


def row_for(page_text: str, email: str) -> str:
    start = page_text.index(f'data-email="{email}"')
    return page_text[start:page_text.index("</tr>", start)]


def test_the_holder_invites_changes_resends_and_revokes_an_additional_user(new_contract):
    contract = new_contract().number
    browser, _ = portal_login(((contract, "owner"),))
    users = browser.get(f"{PORTAL_URL}/c/{contract}/users", timeout=20)
    assert users.status_code == 200
    email = unique_email("portal-sub")
    added = browser.post(f"{PORTAL_URL}/c/{contract}/users", data={
        "csrf": csrf_of(users), "name": "Anna Ozola", "email": email, "level": "bills", "valid_until": ""},
        timeout=20)
    assert added.url == f"{PORTAL_URL}/c/{contract}/users" and "Uzaicinājums ir nosūtīts." in added.text
    row = row_for(added.text, email)
    assert "uzaicināts" in row and "rēķini" in row
    grant = row.split(f"/c/{contract}/users/")[1].split('"')[0]
    csrf = csrf_of(added)
    for action, words in (("resend", "nosūtīts vēlreiz"), ("change", "Izmaiņas ir saglabātas")):
        done = browser.post(f"{PORTAL_URL}/c/{contract}/users/{grant}", data={
            "csrf": csrf, "action": action, "level": "bills_readings", "valid_until": "2031-12-31"}, timeout=20)
        assert words in done.text, done.text[-2000:]
    assert "rēķini un rādījumi" in row_for(done.text, email) and "31.12.2031" in row_for(done.text, email)
    revoked = browser.post(f"{PORTAL_URL}/c/{contract}/users/{grant}", data={"csrf": csrf, "action": "revoke"},
                           timeout=20)
    assert "Piekļuve ir atsaukta." in revoked.text and "atsaukts" in row_for(revoked.text, email)
    bad = browser.post(f"{PORTAL_URL}/c/{contract}/users", data={
        "csrf": csrf, "name": "X", "email": "not-an-address", "level": "bills"}, timeout=20)
    assert bad.status_code == 422 and 'id="users-error"' in bad.text
    activity = browser.get(f"{PORTAL_URL}/c/{contract}/activity", timeout=20)
    assert activity.status_code == 200
    for words in ("uzaicināts lietotājs", "uzaicinājums nosūtīts vēlreiz", "uzaicinājums atcelts"):
        assert words in activity.text


def test_a_change_needing_a_stronger_login_sends_the_person_through_identity_then_is_done_once(new_contract):
    contract = new_contract().number
    browser, _person, sid = logged_in_browser(grants=((contract, "owner"),), acr=LOW)
    users = browser.get(f"{PORTAL_URL}/login", params={"next": f"/c/{contract}/users"}, timeout=20)
    assert users.url == f"{PORTAL_URL}/c/{contract}/users"
    email = unique_email("portal-stepup")
    asked = browser.post(f"{PORTAL_URL}/c/{contract}/users", data={
        "csrf": csrf_of(users), "name": "Pēteris Kalns", "email": email, "level": "bills"},
        allow_redirects=False, timeout=20)
    assert asked.status_code == 303
    start = urlparse(asked.headers["Location"])
    assert start.path == "/login" and "substantial" in parse_qs(start.query)["acr_values"][0]
    authorize = browser.get(f"{PORTAL_URL}{start.path}?{start.query}", allow_redirects=False, timeout=20)
    location = authorize.headers["Location"]
    assert location.startswith(f"{ISSUER}/authorize?") and "acr_values=" in location
    with identity_session() as session:  # the person completes a Smart-ID login at identity
        login = session.get(LoginSession, sid)
        login.acr, login.amr, login.auth_time = "http://eidas.europa.eu/LoA/substantial", ["smartid"], datetime.now(UTC)
    done = browser.get(location, timeout=30)
    assert done.url == f"{PORTAL_URL}/c/{contract}/users", done.url
    assert "Uzaicinājums ir nosūtīts." in done.text and done.text.count(f'data-email="{email}"') == 1
    again = browser.get(f"{PORTAL_URL}/resume", timeout=20)  # carried out once: nothing left to resume
    assert again.text.count(f'data-email="{email}"') == 0 and again.status_code == 200


def test_contact_details_change_and_a_new_phone_asks_for_a_stronger_login():
    browser, _person, _sid = logged_in_browser(grants=(("LVG-100002", "owner"),), acr=LOW)
    browser.get(f"{PORTAL_URL}/login", timeout=20)
    form = browser.get(f"{PORTAL_URL}/contact", timeout=20)
    assert form.status_code == 200 and 'id="contact-form"' in form.text
    saved = browser.post(f"{PORTAL_URL}/contact", data={"csrf": csrf_of(form), "address": "Lāčplēša iela 1, Rīga",
                                                        "language": "en"}, timeout=20)
    assert "Your contact details were saved." in saved.text and "Lāčplēša iela 1, Rīga" in saved.text
    phone = browser.post(f"{PORTAL_URL}/contact", data={"csrf": csrf_of(saved), "phone": "+37120000001",
                                                        "address": "Lāčplēša iela 1, Rīga", "language": "en"},
                         allow_redirects=False, timeout=20)
    assert phone.status_code == 303 and phone.headers["Location"].startswith("/login?acr_values=")


def test_the_holder_grants_a_mandate_online_after_a_fresh_strong_login(new_contract):
    from datetime import timedelta

    from klients_common.riga import riga_today

    contract = new_contract().number
    browser, _person, sid = logged_in_browser(grants=((contract, "owner"),), auth_age=timedelta(minutes=30))
    users = browser.get(f"{PORTAL_URL}/login", params={"next": f"/c/{contract}/users"}, timeout=20)
    assert 'id="add-mandate"' in users.text
    email = unique_email("portal-mandate")
    asked = browser.post(f"{PORTAL_URL}/c/{contract}/mandates", data={
        "csrf": csrf_of(users), "name": "Laura Ozoliņa", "email": email, "personal_code": "320000-00008",
        "valid_until": (riga_today() + timedelta(days=200)).isoformat()}, allow_redirects=False, timeout=20)
    start = parse_qs(urlparse(asked.headers["Location"]).query)
    assert start["max_age"] == ["900"]  # the login must be at most 15 minutes old
    with identity_session() as session:
        session.get(LoginSession, sid).auth_time = datetime.now(UTC)  # a fresh strong login
    done = browser.get(f"{PORTAL_URL}{asked.headers['Location']}", timeout=30)
    assert done.url == f"{PORTAL_URL}/c/{contract}/users", done.url
    assert "Pilnvarotajai personai nosūtījām uzaicinājumu." in done.text
    assert "Pilnvarotā persona" in done.text[done.text.index(f'data-email="{email}"'):]
