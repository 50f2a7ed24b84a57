"""One token pipeline: what a person's token may carry (scopes per client, never a service scope), how long a
login's tokens live (no refresh outlives the login), and revocation that reaches every place a token is
accepted: a reused code, a reused refresh token, ``/revoke``, logout and a password change stop the access
tokens already issued at identity, at the gateway and at every service, within a second or so."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select, update

from klients_common.digests import secret_digest as digest
from klients_common.errors import Forbidden, Unauthenticated
from klients_common.rpc import RpcClient
from klients_identity.access.accounts import end_sessions
from klients_identity.models import LoginSession, RefreshToken
from tests.support.helpers import bearer
from tests.support.oidc_helpers import (
    ISSUER,
    PORTAL,
    authorize,
    code_for,
    exchange,
    logged_in_browser,
    pkce,
    redirect_params,
    refresh,
)
from tests.support.stack import bus_uri, identity_session, wait_until

pytestmark = pytest.mark.usefixtures("stack")
PROPAGATION = 5  # seconds: identity's outbox relays every second, then one broadcast


def tokens_for(browser: requests.Session, **params: str) -> dict:
    verifier, challenge = pkce()
    answer = exchange(code_for(browser, (verifier, challenge), **params), verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()


def userinfo_status(access_token: str) -> int:
    return requests.get(f"{ISSUER}/userinfo", headers=bearer(access_token), timeout=10).status_code


def gateway_refuses(gateway, access_token: str) -> None:
    """The gateway (and behind it billing) refuses the token within PROPAGATION seconds."""
    wait_until("the gateway refusing the revoked token",
               lambda: gateway.get("/api/v1/me", headers=bearer(access_token)).status_code == 401, PROPAGATION)


def still_accepted(gateway, access_token: str) -> bool:
    return gateway.get("/api/v1/me", headers=bearer(access_token)).status_code == 200


def refuses(rpc, service: str, method: str, access_token: str) -> bool:
    args = ("LVG-100001",) if method == "list_meters" else ()
    try:
        rpc.call(service, method, *args, context={"authorization": f"Bearer {access_token}"})
    except Unauthenticated:
        return True
    return False


# --- scopes ---------------------------------------------------------------------------------------------

def test_a_person_never_gets_a_service_scope():
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    answer = redirect_params(authorize(browser, scope="openid register:read", code_challenge=challenge,
                                       code_challenge_method="S256"))
    if "error" in answer:  # refusing the unknown scope outright is as good as leaving it out
        assert answer["error"] == "invalid_scope"
        return
    token = exchange(answer["code"], verifier).json()
    assert "register:read" not in token["scope"].split()
    assert userinfo_status(token["access_token"]) == 200


def test_a_client_gets_only_the_scopes_registered_for_it():
    browser, _, _ = logged_in_browser()
    token = tokens_for(browser, scope="openid grants profile")  # `grants` is the Keycloak broker's only
    assert token["scope"].split() == ["openid", "profile"]
    again = refresh(token["refresh_token"]).json()
    assert again["scope"].split() == ["openid", "profile"]


def test_billings_register_answers_only_identitys_service_token(mint):
    """Even over identity's own broker connection, a token with the right scope but a person's subject (or
    another client) is refused: a service call rests on who calls, never on a scope alone."""
    caller = RpcClient(bus_uri("identity"), timeout=5)
    try:
        person_token = mint({}, subject="person-1", scope="register:read")
        other_client = mint({}, subject="service:identity", scope="register:read", client_id="klients-portal")
        for token in (person_token, other_client):
            with pytest.raises(Forbidden):
                caller.call("billing", "email_on_file", "LVG-100001", context={"authorization": f"Bearer {token}"})
        service = mint({}, subject="service:identity", scope="register:read", client_id="klients-identity")
        caller.call("billing", "email_on_file", "LVG-100001", context={"authorization": f"Bearer {service}"})
    finally:
        caller.close()


# --- a login's tokens never outlive it -------------------------------------------------------------------

def test_a_refresh_never_outlives_its_login():
    browser, _, sid = logged_in_browser()
    token = tokens_for(browser)
    soon = datetime.now(UTC) + timedelta(minutes=10)
    with identity_session() as session:
        session.execute(update(LoginSession).where(LoginSession.sid == sid).values(expires_at=soon))
    renewed = refresh(token["refresh_token"]).json()
    with identity_session() as session:
        expires = session.scalar(select(RefreshToken.expires_at).where(
            RefreshToken.token_hash == digest(renewed["refresh_token"])))
    assert expires <= soon  # not a fresh 8 hours
    with identity_session() as session:  # the login reaches its absolute end (not logged out)
        session.execute(update(LoginSession).where(LoginSession.sid == sid)
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    late = refresh(renewed["refresh_token"])
    assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(("extra", "error"), [({"scope": "openid phone"}, "invalid_scope"),
                                              ({"resource": "urn:klients:contract:NOT-HERS"}, "invalid_target")])
def test_a_refused_refresh_uses_nothing_up(extra, error):
    """A refresh refused for what it asks (a wider scope, a contract the person has no grant on) leaves the token
    as it was: no next token stored, and the same token still refreshes (not taken for a replay)."""
    token = tokens_for(logged_in_browser()[0])
    refused = requests.post(f"{ISSUER}/token", data={"grant_type": "refresh_token", "client_id": PORTAL,
                                                     "refresh_token": token["refresh_token"], **extra}, timeout=10)
    assert refused.status_code == 400 and refused.json()["error"] == error
    with identity_session() as session:
        family = session.scalar(select(RefreshToken.family_id).where(
            RefreshToken.token_hash == digest(token["refresh_token"])))
        assert len(session.scalars(select(RefreshToken.token_hash).where(RefreshToken.family_id == family)).all()) == 1
    assert "access_token" in refresh(token["refresh_token"]).json()


def test_a_code_is_worthless_once_its_login_ended():
    browser, _, sid = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    with identity_session() as session:
        session.execute(update(LoginSession).where(LoginSession.sid == sid).values(ended_at=datetime.now(UTC)))
    answer = exchange(code, verifier)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


# --- revocation reaches every place a token is accepted ----------------------------------------------------

def test_a_reused_code_revokes_the_access_token_of_its_first_exchange(gateway):
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    first = exchange(code, verifier).json()
    assert still_accepted(gateway, first["access_token"])
    assert exchange(code, verifier).json()["error"] == "invalid_grant"
    assert userinfo_status(first["access_token"]) == 401
    gateway_refuses(gateway, first["access_token"])
    # the login itself stands: the person's next authorization at the client works
    fresh = tokens_for(browser)
    time.sleep(1.1)  # tokens of the same second as a revocation are refused with it
    fresh = refresh(fresh["refresh_token"]).json()
    assert still_accepted(gateway, fresh["access_token"])


def test_a_reused_refresh_token_revokes_the_chains_access_tokens(gateway):
    browser, _, _ = logged_in_browser()
    first = tokens_for(browser)
    second = refresh(first["refresh_token"]).json()
    assert still_accepted(gateway, second["access_token"])
    assert refresh(first["refresh_token"]).json()["error"] == "invalid_grant"  # the replay
    assert userinfo_status(second["access_token"]) == 401
    gateway_refuses(gateway, second["access_token"])


def test_revoking_an_access_token_stops_it_at_the_gateway_and_every_service(gateway, rpc):
    browser, _, _ = logged_in_browser()
    token = tokens_for(browser)
    other = tokens_for(browser)  # another token of the same login stays good
    assert requests.post(f"{ISSUER}/revoke", data={"token": token["access_token"], "client_id": PORTAL},
                         timeout=10).status_code == 200
    assert userinfo_status(token["access_token"]) == 401
    gateway_refuses(gateway, token["access_token"])
    for service, method in (("billing", "list_contracts"), ("metering", "list_meters"), ("identity", "get_contact")):
        wait_until(f"{service} refusing the revoked token",
                   lambda s=service, m=method: refuses(rpc, s, m, token["access_token"]), PROPAGATION)
    assert still_accepted(gateway, other["access_token"])
    introspected = requests.post(f"{ISSUER}/introspect", data={"token": token["access_token"]}, timeout=10)
    assert introspected.status_code == 401  # introspection is for confidential clients only


def test_a_token_already_verified_by_the_gateway_and_services_is_refused_there_once_revoked(gateway, rpc):
    """Verified tokens are remembered per process (klients_common.auth): a revocation still stops them."""
    browser, _, _ = logged_in_browser()
    token = tokens_for(browser)
    services = (("billing", "list_contracts"), ("metering", "list_meters"))
    for _ in range(2):  # verified, then answered from the verifier's memory
        assert still_accepted(gateway, token["access_token"])
        assert not any(refuses(rpc, s, m, token["access_token"]) for s, m in services)
    assert requests.post(f"{ISSUER}/revoke", data={"token": token["access_token"], "client_id": PORTAL},
                         timeout=10).status_code == 200
    gateway_refuses(gateway, token["access_token"])
    for service, method in services:
        wait_until(f"{service} refusing the revoked token",
                   lambda s=service, m=method: refuses(rpc, s, m, token["access_token"]), PROPAGATION)


def test_revoking_a_refresh_token_stops_its_access_tokens(gateway):
    browser, _, _ = logged_in_browser()
    token = tokens_for(browser)
    assert requests.post(f"{ISSUER}/revoke", data={"token": token["refresh_token"], "client_id": PORTAL},
                         timeout=10).status_code == 200
    assert refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    gateway_refuses(gateway, token["access_token"])


def test_logout_stops_the_logins_access_tokens(gateway):
    browser, _, _ = logged_in_browser()
    token = tokens_for(browser)
    assert still_accepted(gateway, token["access_token"])
    assert browser.get(f"{ISSUER}/logout", timeout=10).status_code == 200
    assert userinfo_status(token["access_token"]) == 401
    gateway_refuses(gateway, token["access_token"])


def test_ending_a_persons_logins_stops_every_access_token_they_hold(gateway):
    """What a password change (or account linking) does: every live login of the person ends, everywhere."""
    browser, person, _ = logged_in_browser()
    other_browser, _, _ = logged_in_browser()
    token = tokens_for(browser)
    stranger = tokens_for(other_browser)
    with identity_session() as session:
        end_sessions(session, person)
    gateway_refuses(gateway, token["access_token"])
    assert refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    assert still_accepted(gateway, stranger["access_token"])
