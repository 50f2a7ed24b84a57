"""Operator sessions at identity end when the Keycloak staff realm ends them (OpenID Connect Back-Channel
Logout 1.0), and an operator's action re-checks the staff session at Keycloak, so a disabled operator cannot
act even if the logout token is lost. Against the real Keycloak: the console's actions through its admin
REST API, the operator's already-open browser at identity."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
import requests
from sqlalchemy import select

from klients_identity.models import Application, AuditEvent, BrowserSession
from tests.support.access_helpers import application_id, record
from tests.support.helpers import csrf_of
from tests.support.keycloak import KEYCLOAK, STAFF, operator_browser, staff_realm
from tests.support.keycloak_login import code_flow_token
from tests.support.oidc_helpers import ISSUER
from tests.support.stack import identity_session

BACKCHANNEL = f"{ISSUER}/operator/backchannel-logout"


def leaver(admin, username: str) -> str:
    """An operator of this test's own (enabled, role operator), so disabling them leaves the others be."""
    return staff_realm.ensure_user(admin, username, "Aiva", "Aizgājēja", ("operator",), STAFF.demo_password)


def status_of(application: str) -> str:
    with identity_session() as session:
        return session.get(Application, application).status


def ended_reasons(username: str) -> list[str]:
    with identity_session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.actor == f"operator:{username}",
                                                        AuditEvent.action == "operator_session_ended"))
        return [row.detail.get("reason") for row in rows]


def test_an_operator_disabled_and_signed_out_in_the_console_is_refused_at_once(staff, new_contract):
    user_id = leaver(staff, "leaver-one")
    browser = operator_browser("leaver-one")
    recorded = record(browser, new_contract().number)
    assert recorded.status_code == 200
    assert browser.get(f"{ISSUER}/operator/", timeout=10).url == f"{ISSUER}/operator/"

    staff.update_user(user_id, {"enabled": False})  # the console: Enabled off ...
    staff.user_logout(user_id)  # ... and Sessions → Sign out

    home = browser.get(f"{ISSUER}/operator/", timeout=10)
    assert home.url.startswith(f"{KEYCLOAK}/realms/{STAFF.realm}/"), home.url  # sent to sign in again
    approve = browser.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                           data={"csrf": csrf_of(recorded)}, timeout=10, allow_redirects=False)
    assert approve.status_code == 401 and "Pieslēdzieties vēlreiz" in approve.text
    assert status_of(application_id(recorded)) == "recorded"
    assert ended_reasons("leaver-one") == ["signed out at Keycloak"]  # by the logout token, not a re-check


def test_a_disabled_operator_cannot_act_even_if_the_logout_token_is_lost(staff, new_contract):
    user_id = leaver(staff, "leaver-two")
    browser = operator_browser("leaver-two")
    recorded = record(browser, new_contract().number)
    staff.update_user(user_id, {"enabled": False})  # no sign-out: identity hears nothing from Keycloak
    with identity_session() as session:  # a minute passes since the last check of the staff session
        for row in session.scalars(select(BrowserSession)):
            operator = row.data.get("operator") or {}
            if operator.get("username") == "leaver-two":
                row.data = {**row.data, "operator": {**operator, "checked_at": time.time() - 61}}

    approve = browser.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                           data={"csrf": csrf_of(recorded)}, timeout=10, allow_redirects=False)
    assert approve.status_code == 401
    assert status_of(application_id(recorded)) == "recorded"
    assert ended_reasons("leaver-two") == ["staff session no longer valid at Keycloak"]
    assert browser.get(f"{ISSUER}/operator/", timeout=10).url.startswith(KEYCLOAK)


def test_a_role_taken_away_in_the_console_stops_the_next_action(staff, new_contract):
    user_id = leaver(staff, "leaver-three")
    browser = operator_browser("leaver-three")
    recorded = record(browser, new_contract().number)
    staff.delete_realm_roles_of_user(user_id, [staff.get_realm_role("operator")])
    with identity_session() as session:
        for row in session.scalars(select(BrowserSession)):
            operator = row.data.get("operator") or {}
            if operator.get("username") == "leaver-three":
                row.data = {**row.data, "operator": {**operator, "checked_at": 0}}
    approve = browser.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                           data={"csrf": csrf_of(recorded)}, timeout=10, allow_redirects=False)
    assert approve.status_code == 403
    assert status_of(application_id(recorded)) == "recorded"


def logout_answer(data: dict[str, str] | None = None, **kwargs) -> requests.Response:
    return requests.post(BACKCHANNEL, data=data, timeout=10, **kwargs)


@pytest.mark.parametrize("data", [None, {"logout_token": ""}, {"logout_token": "not.a.jwt"},
                                  {"logout_token": "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0."}])
def test_a_malformed_logout_request_is_refused(staff, data):
    answer = logout_answer(data)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    assert answer.headers["Cache-Control"] == "no-store"


def test_the_realms_id_and_access_tokens_are_not_logout_tokens(staff):
    tokens = code_flow_token(KEYCLOAK, STAFF.realm, staff_realm.OPERATOR_CLIENT, STAFF.client_secret,
                             f"{STAFF.identity_url}/operator/callback", "operator", STAFF.demo_password)
    for kind in ("id_token", "access_token"):
        answer = logout_answer({"logout_token": tokens[kind]})
        assert answer.status_code == 400, kind
        assert answer.headers["Cache-Control"] == "no-store"


class _Capture(BaseHTTPRequestHandler):
    tokens: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self.tokens.extend(parse_qs(body).get("logout_token", []))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def test_a_real_logout_token_is_accepted_once(staff):
    """Keycloak's own logout token (caught on its way by pointing the client elsewhere for a moment) is
    accepted by identity once; the same token again is a replay (its jti was seen)."""
    server = HTTPServer(("127.0.0.1", 0), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_uuid = staff.get_client_id(staff_realm.OPERATOR_CLIENT)
    settings = staff_realm.client_settings(STAFF)
    settings["attributes"]["backchannel.logout.url"] = f"http://127.0.0.1:{server.server_port}/capture"
    try:
        staff.update_client(client_uuid, settings)
        user_id = leaver(staff, "leaver-four")
        code_flow_token(KEYCLOAK, STAFF.realm, staff_realm.OPERATOR_CLIENT, STAFF.client_secret,
                        f"{STAFF.identity_url}/operator/callback", "leaver-four", STAFF.demo_password)
        staff.user_logout(user_id)
        deadline = time.monotonic() + 5
        while not _Capture.tokens:
            assert time.monotonic() < deadline, "Keycloak sent no logout token"
            time.sleep(0.1)
    finally:
        staff_realm.provision(staff, STAFF)
        server.shutdown()
        server.server_close()
    token = _Capture.tokens[-1]
    first = logout_answer({"logout_token": token})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "no-store"
    again = logout_answer({"logout_token": token})
    assert again.status_code == 400 and "jti" in again.json()["error_description"]


# --- the one translation table ---------------------------------------------------------------------------------

ENGLISH = (">owner<", ">delegate<", ">subuser<", ">active<", ">revoked<", "(bills)", "(bills_readings)",
           "(application/pdf", "give the person", "a mandate needs", "not a valid", "give a valid",
           "already has or is invited", "this access is already")


def latvian_only(page: requests.Response) -> None:
    assert page.status_code < 500 and '<html lang="lv">' in page.text, page.text[:300]
    assert "\u27e6" not in page.text, [line for line in page.text.splitlines() if "\u27e6" in line]
    assert not [word for word in ENGLISH if word in page.text], page.text


def test_every_operator_and_invitation_page_speaks_latvian(staff, new_contract, maildir):
    from tests.support.access_helpers import invitation_link, now, plant_person, unique_email

    contract = new_contract().number
    plant_person(contract, email=unique_email("holder"))
    _, revoked = plant_person(contract, "subuser", "bills_readings")
    browser = operator_browser()
    latvian_only(browser.get(f"{ISSUER}/operator/?lang=lv", timeout=10))
    latvian_only(browser.get(f"{ISSUER}/operator/applications/new", timeout=10))
    latvian_only(record(browser, contract, name="", email="nope", personal_code="010111-22341", valid_until=""))
    latvian_only(record(browser, contract, kind="subuser", level="x", valid_from="2099-01-01",
                        valid_until="2098-01-01"))
    invitee = unique_email("lv")
    recorded = record(browser, contract, email=invitee)
    latvian_only(recorded)
    started = now()
    approved = browser.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                            data={"csrf": csrf_of(recorded)}, timeout=10)
    latvian_only(approved)
    page = browser.get(f"{ISSUER}/operator/contracts/{contract}", timeout=10)
    browser.post(f"{ISSUER}/operator/contracts/{contract}/users/{revoked}/revoke",
                 data={"csrf": csrf_of(page), "reason": "tests"}, timeout=10)
    latvian_only(browser.get(f"{ISSUER}/operator/contracts/{contract}", timeout=10))
    again = browser.post(f"{ISSUER}/operator/contracts/{contract}/users/{revoked}/revoke",
                         data={"csrf": csrf_of(page), "reason": "tests"}, timeout=10)
    assert again.status_code == 409
    latvian_only(again)
    twice = record(browser, contract, email=invitee)  # the same person again: approving it is refused
    refused = browser.post(f"{ISSUER}/operator/applications/{application_id(twice)}/approve",
                           data={"csrf": csrf_of(twice)}, timeout=10)
    assert 'id="error-message"' in refused.text
    latvian_only(refused)
    latvian_only(browser.get(f"{ISSUER}/operator/", timeout=10))
    latvian_only(requests.get(invitation_link(maildir, invitee, after=started), timeout=10))


def test_the_language_chosen_before_sign_in_reaches_keycloak(staff):
    for lang in ("en", "lv"):
        page = requests.get(f"{ISSUER}/operator/?lang={lang}", timeout=10)
        assert any(f"ui_locales={lang}" in hop.headers.get("Location", "") for hop in page.history)
        assert f'lang="{lang}"' in page.text
        heading = {"en": "Klients customer service", "lv": "Klients klientu apkalpošana"}[lang]
        assert heading in page.text, page.text[:2000]
