"""Keycloak-fronted mode against a real Keycloak: a portal realm brokers to identity (Smart-ID simulator
behind it) and issues the portal's tokens; their grants claim is accepted by the gateway and the services;
grant changes in identity reach the next Keycloak token; an operator's console actions take effect (a
console sign-out also ends identity's login through a back-channel logout); the
realm script is idempotent and repairs hand edits; an undeclared attribute is caught; a Keycloak restart
does not lose a grant sync."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from klients_common.auth import TokenVerifier, TrustedIssuer
from klients_common.digests import secret_digest
from klients_identity.access import grants as access
from klients_identity.models import Invitation, LoginSession, Person
from tests.support.helpers import bearer
from tests.support.keycloak import (
    HOLDER,
    KEYCLOAK,
    OIDC,
    PORTAL,
    REALM_URL,
    TAGS,
    broker,
    brokered_login,
    person_id,
    portal_realm,
)
from tests.support.oidc_helpers import ISSUER, code_for, exchange, pkce
from tests.support.oidc_helpers import refresh as identity_refresh
from tests.support.stack import BIN, ROOT, identity_session, wait_until


def keycloak_claims(token: str) -> dict:
    issuer = TrustedIssuer(issuer=REALM_URL, jwks_uri=f"{OIDC}/certs", audience="klients-api",
                           token_types=("JWT",), client_id_claims=("azp",), payload_types=("Bearer",))
    return TokenVerifier([issuer]).verify(token).claims


def refresh(token: str) -> requests.Response:
    return requests.post(f"{OIDC}/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                "client_id": portal_realm.PORTAL_CLIENT}, timeout=15)


def test_a_brokered_login_ends_with_a_keycloak_token_the_gateway_and_services_accept(fronted, new_contract,
                                                                                     gateway):
    contract = new_contract(personal_code=HOLDER).number
    _, tokens = brokered_login()
    claims = keycloak_claims(tokens["access_token"])
    assert claims["iss"] == REALM_URL and claims["sub"] == person_id()
    assert claims["grants"][contract]["role"] == "owner" and "users:manage" in claims["grants"][contract]["rights"]
    assert claims["acr"] == "http://eidas.europa.eu/LoA/substantial"
    balance = gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(tokens["access_token"]))
    assert balance.status_code == 200 and balance.get_json()["currency"] == "EUR"  # billing verified it too
    assert gateway.get("/api/v1/contracts/LVG-100003/balance",
                       headers=bearer(tokens["access_token"])).status_code == 404


def _give_and_take(contract: str, person: str) -> tuple[str, Callable[[], None]]:
    """Give the person a sub-user grant on ``contract`` through identity's own rules; return its id and a
    function that revokes it."""
    operator = access.Actor(id="operator:test", role="operator", name="Klientu apkalpošana")
    with identity_session() as session:
        new = access.NewUser(name="Brokered", email=f"b-{secrets.token_hex(4)}@example.lv", role="subuser",
                             level="bills", personal_code=HOLDER, valid_from=None, valid_until=None)
        invited = access.invite(session, operator, contract, new, link_base=ISSUER)
        invitation = session.scalar(select(Invitation).where(Invitation.grant_id == invited["id"]))
        token = secrets.token_urlsafe(32)
        invitation.token_hash = secret_digest(token)  # a link we know (the mailed one is hashed)
        session.commit()
        access.accept(session, token, session.get(Person, person), password_hash=None, contact={})

    def take() -> None:
        with identity_session() as session:
            access.revoke(session, operator, contract, invited["id"])

    return invited["id"], take


def test_grant_changes_in_identity_reach_the_next_keycloak_token(fronted, new_contract):
    own = new_contract(personal_code=HOLDER).number
    other = new_contract().number
    _, tokens = brokered_login()
    assert other not in keycloak_claims(tokens["access_token"])["grants"]
    _, take = _give_and_take(other, person_id())

    def has_other(current: dict) -> bool:
        answer = refresh(current["refresh_token"])
        assert answer.status_code == 200, answer.text
        current.update(answer.json())
        return other in keycloak_claims(current["access_token"])["grants"]

    wait_until("the new grant in Keycloak's token", lambda: has_other(tokens), timeout=20)
    assert keycloak_claims(tokens["access_token"])["grants"][other]["role"] == "subuser"
    take()
    wait_until("the revoked grant gone from Keycloak's token", lambda: not has_other(tokens), timeout=20)
    assert own in keycloak_claims(tokens["access_token"])["grants"]


def test_a_user_disabled_or_logged_out_in_the_console_cannot_refresh(fronted, new_contract):
    new_contract(personal_code=HOLDER)
    _, tokens = brokered_login()
    user_id = fronted.get_user_id(person_id())
    fronted.user_logout(user_id)  # "Sign out" in the console
    assert refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
    _, tokens = brokered_login()
    fronted.update_user(user_id, {"enabled": False})  # "Enabled: off" in the console
    try:
        assert refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
        # Logging in again passes identity (the person is fine there) but Keycloak stops it on its own page:
        *_, ended = broker(HOLDER)
        assert isinstance(ended, requests.Response) and ended.url.startswith(REALM_URL), ended
        assert "disabled" in TAGS.sub(" ", ended.text).lower()
    finally:
        fronted.update_user(user_id, {"enabled": True})


def identity_login(browser: requests.Session) -> tuple[str, dict[str, str]]:
    """The identity login behind a brokered browser, and tokens identity issues from it to its own portal
    client (a refresh chain at identity); return the login's sid and the token response."""
    verifier, challenge = pkce()
    answer = exchange(code_for(browser, (verifier, challenge)), verifier)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    with identity_session() as session:
        sid = session.scalars(select(LoginSession.sid).where(LoginSession.person_id == person_id())
                              .order_by(LoginSession.auth_time.desc())).first()
    return sid, tokens


@pytest.mark.parametrize("disable", [False, True], ids=["signed-out", "disabled-then-signed-out"])
def test_a_console_sign_out_ends_identitys_login_its_refresh_chain_and_its_access_tokens(
        fronted, new_contract, gateway_url, disable):
    contract = new_contract(personal_code=HOLDER).number
    browser, _ = brokered_login()
    sid, tokens = identity_login(browser)
    balance = f"{gateway_url}/api/v1/contracts/{contract}/balance"
    assert requests.get(balance, headers=bearer(tokens["access_token"]), timeout=10).status_code == 200
    user_id = fronted.get_user_id(person_id())
    try:
        if disable:
            fronted.update_user(user_id, {"enabled": False})  # "Enabled: off" in the console ...
        fronted.user_logout(user_id)  # ... "Sign out": Keycloak posts a logout token to identity
        with identity_session() as session:
            assert session.get(LoginSession, sid).ended_at is not None
        assert identity_refresh(tokens["refresh_token"]).json()["error"] == "invalid_grant"
        wait_until("the gateway to refuse the ended login's access token", lambda: requests.get(
            balance, headers=bearer(tokens["access_token"]), timeout=10).status_code == 401, timeout=5)
    finally:
        fronted.update_user(user_id, {"enabled": True})


def test_a_refused_portal_logout_token_is_a_400_that_ends_nothing(fronted, new_contract):
    new_contract(personal_code=HOLDER)
    browser, tokens = brokered_login()
    sid, _ = identity_login(browser)
    access_token = requests.post(f"{ISSUER}/backchannel-logout/portal", data={"logout_token": tokens["access_token"]},
                               timeout=10)  # a real token of the realm, but not a logout token
    missing = requests.post(f"{ISSUER}/backchannel-logout/portal", json={"logout_token": "x"}, timeout=10)
    for answer in (access_token, missing):
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
        assert answer.headers["Cache-Control"] == "no-store"
    with identity_session() as session:
        assert session.get(LoginSession, sid).ended_at is None


def test_an_undeclared_attribute_is_detected_not_silently_dropped(fronted, new_contract):
    from klients_identity.events.keycloak_sync import UndeclaredAttribute, write_attribute

    new_contract(personal_code=HOLDER)
    brokered_login()
    user_id = fronted.get_user_id(person_id())
    write_attribute(fronted, user_id, "grants", '{"X-1":{"role":"owner","rights":["bills:read"]}}')  # declared
    with pytest.raises(UndeclaredAttribute):
        write_attribute(fronted, user_id, "contract_ids", "X-1")  # Keycloak answers 204 and keeps nothing


def test_the_realm_script_is_idempotent_and_repairs_hand_edits(fronted):
    assert portal_realm.provision(fronted, PORTAL) == []
    fronted.change_current_realm(PORTAL.realm)
    portal = fronted.get_client_id(portal_realm.PORTAL_CLIENT)
    mapper = next(m for m in fronted.get_mappers_from_client(portal) if m["name"] == "grants")
    fronted.update_client_mapper(portal, mapper["id"], {**mapper, "config": {**mapper["config"],
                                                                             "claim.name": "stolen"}})
    fronted.update_realm(PORTAL.realm, {"bruteForceProtected": False})
    repaired = portal_realm.provision(fronted, PORTAL)
    assert "mapper grants settings" in repaired and "realm settings" in repaired
    assert portal_realm.provision(fronted, PORTAL) == []
    fronted.change_current_realm(PORTAL.realm)


def test_a_keycloak_restart_mid_sync_loses_no_grant_change(fronted, new_contract):
    new_contract(personal_code=HOLDER)
    _, tokens = brokered_login()
    other = new_contract().number
    pid, var = running_keycloak()
    subprocess.run(["kill", str(pid)], check=True)
    _wait_down()
    try:
        _give_and_take(other, person_id())  # the sync fails while Keycloak is down and is retried
        time.sleep(3)
    finally:
        subprocess.run(["bash", str(ROOT / "deploy" / "keycloak.sh")], check=True, capture_output=True,
                       env={**os.environ, "KLIENTS_VAR_DIR": str(var)})
    fronted.change_current_realm(PORTAL.realm)

    def synced() -> bool:
        answer = refresh(tokens["refresh_token"])
        if answer.status_code != 200:
            return False
        tokens.update(answer.json())
        return other in keycloak_claims(tokens["access_token"])["grants"]

    wait_until("the grant to reach Keycloak after its restart", synced, timeout=60)


def running_keycloak() -> tuple[int, Path]:
    """Return the running Keycloak's process id and the var/ folder it was installed in (whichever checkout
    started it: ``$VAR/keycloak/keycloak-<version>``)."""
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        home = next((a.decode()[len("-Dkc.home.dir="):] for a in args if a.startswith(b"-Dkc.home.dir=")), None)
        if home and b"start-dev" in args:
            return int(proc.name), Path(home).resolve().parents[1]
    raise AssertionError("no Keycloak process found")


def _wait_down() -> None:
    def down() -> bool:
        try:
            requests.get(f"{KEYCLOAK}/realms/master", timeout=1)
        except requests.ConnectionError:
            return True
        return False

    wait_until("Keycloak to stop", down, timeout=60)


KEYCLOAK_PORTAL = "http://127.0.0.1:18301"  # a second client portal, in the Keycloak-fronted mode


@pytest.fixture(scope="module")
def keycloak_portal(fronted, stack):
    """The client portal with PORTAL_TOKEN_ISSUER=keycloak (its client klients-portal-web in the realm)."""
    stack.start("portal-keycloak", str(BIN / "klients-portal"), "serve", "--bind", "127.0.0.1:18301", "--workers",
                "1", "--threads", "4", env={"PORTAL_TOKEN_ISSUER": "keycloak", "PORTAL_URL": KEYCLOAK_PORTAL})
    wait_until("the Keycloak-mode portal", lambda: requests.get(f"{KEYCLOAK_PORTAL}/healthz", timeout=1).ok)
    yield KEYCLOAK_PORTAL
    stack.stop("portal-keycloak")


def test_the_client_portal_logs_in_through_keycloak_brokered_to_identity_and_shows_the_overview(
        keycloak_portal, new_contract, new_meter, billing_sessions):
    from tests.support.portal_helpers import make_household

    contract, _ = make_household(new_contract, new_meter, billing_sessions, personal_code=HOLDER)
    browser, _, _, landed = broker(HOLDER, start=f"{keycloak_portal}/login?next=/c/{contract}")
    assert not isinstance(landed, str)
    assert landed.status_code == 200 and landed.url == f"{keycloak_portal}/c/{contract}", landed.url
    assert 'id="amount-due"' in landed.text and 'id="reading-window"' in landed.text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}\.", landed.text)
    # The portal holds Keycloak's tokens (issuer: the portal realm), and refreshes them at Keycloak.
    from tests.support.portal_helpers import row_of, secrets_of, update_row

    access, refresh_token, _ = secrets_of(row_of(browser))
    assert keycloak_claims(access)["iss"] == REALM_URL
    update_row(browser, access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    again = browser.get(f"{keycloak_portal}/c/{contract}", timeout=20)
    assert again.status_code == 200 and 'id="amount-due"' in again.text
    assert secrets_of(row_of(browser))[1] != refresh_token
