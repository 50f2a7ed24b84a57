"""Identity as an OpenID Connect provider (docs/security.md, cases 1-29): code flow with PKCE S256,
single-use short-lived codes bound to their client, exact redirect URIs, refresh rotation with reuse
detection, prompt/max_age, RFC 9207 iss, userinfo, revocation, introspection, logout."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from joserfc import jwt
from sqlalchemy import update

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from klients_common.digests import secret_digest as digest
from klients_identity.hashing import hasher
from klients_identity.models import AuthorizationCode, OAuthClient
from klients_identity.oauth import keys
from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import (
    ISSUER,
    PORTAL,
    REDIRECT,
    authorize,
    code_for,
    exchange,
    logged_in_browser,
    pkce,
    redirect_params,
    refresh,
)
from tests.support.stack import identity_session

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module")
def api_verifier(stack):
    return TokenVerifier([TrustedIssuer(ISSUER, f"{ISSUER}/jwks.json", "klients-api")])


@pytest.fixture(scope="module")
def confidential_client(stack):
    with identity_session() as session:
        if session.get(OAuthClient, "test-service") is None:
            session.add(OAuthClient(client_id="test-service", name="Test service",
                                    secret_hash=hasher.hash("s3cret-xyz"), redirect_uris=["http://127.0.0.1:18998/cb"],
                                    scopes="openid profile",
                                    grant_types="authorization_code refresh_token"))
    return "test-service", "s3cret-xyz"


def tokens(browser, **params):
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge), **params)
    response = exchange(code, verifier)
    assert response.status_code == 200, response.text
    return response.json()


def test_discovery_describes_a_code_only_pkce_provider():
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == ISSUER
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    for endpoint in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri",
                     "revocation_endpoint", "introspection_endpoint", "end_session_endpoint"):
        assert meta[endpoint].startswith(ISSUER)


def test_code_flow_issues_rfc9068_access_token_with_grants_and_an_id_token(api_verifier):
    browser, person, sid = logged_in_browser(grants=(("LVG-100001", "owner"), ("LVG-100003", "subuser", "bills")))
    verifier, challenge = pkce()
    response = authorize(browser, code_challenge=challenge, code_challenge_method="S256", nonce="n-123")
    params = redirect_params(response)
    assert params["iss"] == ISSUER and params["state"] == "st-1"
    token = exchange(params["code"], verifier).json()
    access = api_verifier.verify(token["access_token"])
    assert access.subject == person and access.client_id == PORTAL
    assert access.claims["acr"] == "http://eidas.europa.eu/LoA/high" and access.claims["sid"] == sid
    assert access.claims["amr"] == ["smartid"] and isinstance(access.claims["auth_time"], int)
    assert access.claims["exp"] - access.claims["iat"] <= 300
    assert access.grants["LVG-100001"].role == "owner"
    assert sorted(access.grants["LVG-100003"].rights) == ["bills:pay", "bills:read"]
    with identity_session() as session:
        id_token = jwt.decode(token["id_token"], keys.key_set(session))
    assert id_token.header["typ"] == "JWT"
    assert id_token.claims["aud"] == [PORTAL] and id_token.claims["nonce"] == "n-123"
    assert id_token.claims["sub"] == person and id_token.claims["iss"] == ISSUER
    with pytest.raises(InvalidToken):
        api_verifier.verify(token["id_token"])  # an ID token is not an access token


def test_the_common_exchange_answers_as_authlib_does():
    """identity answers a well-formed exchange itself (``oauth/exchange.py``) and hands any other to authlib: a
    public client sending an empty ``client_secret`` is one authlib accepts (method ``none``), so the two answers
    can be compared, and they match: the same fields, headers and ID-token claims (values aside that differ per
    token)."""
    browser, _, _ = logged_in_browser()
    answers = []
    for nonce, extra in (("n-fast", {}), ("n-authlib", {"client_secret": ""})):
        verifier, challenge = pkce()
        code = code_for(browser, (verifier, challenge), nonce=nonce, scope="openid profile email")
        answer = exchange(code, verifier, **extra)
        assert answer.status_code == 200, answer.text
        answers.append(answer)
    fast, authlib = answers
    assert list(fast.json()) == list(authlib.json())
    for header in ("Content-Type", "Cache-Control", "Pragma"):
        assert fast.headers[header] == authlib.headers[header]
    with identity_session() as session:
        key_set = keys.key_set(session)
    fast_id, authlib_id = (jwt.decode(a.json()["id_token"], key_set) for a in answers)
    assert fast_id.header == authlib_id.header
    assert sorted(fast_id.claims) == sorted(authlib_id.claims)
    assert (fast_id.claims["nonce"], authlib_id.claims["nonce"]) == ("n-fast", "n-authlib")
    for claim in ("iss", "aud", "sub", "sid", "acr", "amr", "auth_time", "name", "email"):
        assert fast_id.claims.get(claim) == authlib_id.claims.get(claim), claim


def test_code_is_single_use_and_its_reuse_revokes_what_it_issued():
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    first = exchange(code, verifier).json()
    again = exchange(code, verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert refresh(first["refresh_token"]).json()["error"] == "invalid_grant"


def test_expired_code_is_refused():
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    with identity_session() as session:
        session.execute(update(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code))
                        .values(expires_at=AuthorizationCode.expires_at - timedelta(seconds=61)))
    assert exchange(code, verifier).json()["error"] == "invalid_grant"


def test_code_is_bound_to_its_client(confidential_client):
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    client_id, secret = confidential_client
    stolen = requests.post(f"{ISSUER}/token", auth=(client_id, secret), timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier})
    assert stolen.json()["error"] in ("invalid_grant", "invalid_request")


@pytest.mark.parametrize("redirect_uri", [
    REDIRECT + "/", REDIRECT.upper(), REDIRECT + "?x=1", REDIRECT.replace("18999", "18998"),
    "http://evil.example/callback", REDIRECT + "#frag", "",
])
def test_redirect_uri_must_match_exactly_and_is_never_followed_otherwise(redirect_uri):
    browser, _, _ = logged_in_browser()
    response = authorize(browser, redirect_uri=redirect_uri or None, code_challenge=pkce()[1],
                         code_challenge_method="S256")
    assert response.status_code == 400
    assert "Location" not in response.headers


@pytest.mark.parametrize(("params", "error"), [
    ({}, "invalid_request"),                                                       # no PKCE
    ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": pkce()[1], "code_challenge_method": "S256", "response_type": "token"},
     "unsupported_response_type"),
])
def test_pkce_is_required_s256_only_and_no_implicit_flow(params, error):
    browser, _, _ = logged_in_browser()
    params = redirect_params(authorize(browser, **params))
    assert params["error"] == error and params["iss"] == ISSUER and params["state"] == "st-1"


def test_wrong_verifier_is_refused_and_uses_nothing_up():
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    code = code_for(browser, (verifier, challenge))
    assert exchange(code, pkce()[0]).json()["error"] == "invalid_grant"
    assert exchange(code, verifier, redirect_uri=REDIRECT + "/").json()["error"] == "invalid_grant"
    assert "access_token" in exchange(code, verifier).json()  # refused exchanges did not use the code up


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", "implicit",
                                        "urn:ietf:params:oauth:grant-type:device_code"])
def test_other_grants_are_refused(grant_type):
    response = requests.post(f"{ISSUER}/token", data={"grant_type": grant_type, "client_id": PORTAL,
                                                      "username": "a", "password": "b"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] in ("unsupported_grant_type", "unauthorized_client")


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(api_verifier):
    browser, person, _ = logged_in_browser()
    first = tokens(browser)
    second = refresh(first["refresh_token"]).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert api_verifier.verify(second["access_token"]).subject == person
    reused = refresh(first["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert refresh(second["refresh_token"]).json()["error"] == "invalid_grant"


def test_prompt_none_without_login_answers_login_required():
    response = authorize(requests.Session(), prompt="none", code_challenge=pkce()[1], code_challenge_method="S256")
    params = redirect_params(response)
    assert (params["error"], params["state"], params["iss"]) == ("login_required", "st-1", ISSUER)


def test_prompt_none_with_login_issues_a_code_silently():
    browser, _, _ = logged_in_browser()
    assert "code" in redirect_params(authorize(browser, prompt="none", code_challenge=pkce()[1],
                                               code_challenge_method="S256"))


@pytest.mark.parametrize("params", [{"max_age": "60"}, {"prompt": "login"},
                                    {"acr_values": "http://eidas.europa.eu/LoA/high"}])
def test_stale_or_weak_login_is_sent_to_log_in_again(params):
    browser, _, _ = logged_in_browser(auth_age=timedelta(minutes=5), acr="http://eidas.europa.eu/LoA/substantial")
    response = authorize(browser, code_challenge=pkce()[1], code_challenge_method="S256", **params)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not response.headers["Location"].startswith(REDIRECT)


def test_userinfo_answers_for_a_valid_token_and_not_for_a_revoked_one():
    browser, person, _ = logged_in_browser()
    token = tokens(browser)
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    info = requests.get(f"{ISSUER}/userinfo", headers=headers, timeout=10).json()
    assert info["sub"] == person and info["given_name"] == "Ilze" and "personal_code" not in info
    assert requests.post(f"{ISSUER}/revoke", data={"token": token["access_token"], "client_id": PORTAL},
                         timeout=10).status_code == 200
    assert requests.get(f"{ISSUER}/userinfo", headers=headers, timeout=10).status_code == 401


def test_revoking_a_refresh_token_ends_it():
    token = tokens(logged_in_browser()[0])
    assert requests.post(f"{ISSUER}/revoke", data={"token": token["refresh_token"], "client_id": PORTAL},
                         timeout=10).status_code == 200
    assert refresh(token["refresh_token"]).json()["error"] == "invalid_grant"


def test_introspection_is_for_confidential_clients_only(confidential_client):
    token = tokens(logged_in_browser()[0])
    public = requests.post(f"{ISSUER}/introspect", data={"token": token["access_token"], "client_id": PORTAL},
                           timeout=10)
    assert public.status_code == 401
    answer = requests.post(f"{ISSUER}/introspect", data={"token": token["access_token"]},
                           auth=confidential_client, timeout=10).json()
    assert answer["active"] is True and answer["client_id"] == PORTAL
    assert requests.post(f"{ISSUER}/introspect", data={"token": "nonsense"}, auth=confidential_client,
                         timeout=10).json() == {"active": False}


def test_logout_ends_the_login_and_its_refresh_tokens():
    browser, _, _ = logged_in_browser()
    token = tokens(browser)
    done = browser.get(f"{ISSUER}/logout", params={"client_id": PORTAL, "post_logout_redirect_uri":
                                                   "http://evil.example/"}, allow_redirects=False, timeout=10)
    assert done.status_code == 200  # an unregistered target is not followed
    assert refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    again = authorize(browser, code_challenge=pkce()[1], code_challenge_method="S256")
    assert "/login" in again.headers["Location"]


def test_logout_returns_to_a_registered_uri():
    browser, _, _ = logged_in_browser()
    done = browser.get(f"{ISSUER}/logout", params={"client_id": PORTAL, "post_logout_redirect_uri":
                                                   "http://127.0.0.1:18999/", "state": "bye"},
                       allow_redirects=False, timeout=10)
    assert done.status_code == 302 and done.headers["Location"] == "http://127.0.0.1:18999/?state=bye"


def test_gateway_accepts_identity_issued_tokens(gateway):
    token = tokens(logged_in_browser()[0])
    response = gateway.get("/api/v1/contracts/LVG-100001", headers={"Authorization": f"Bearer {token['access_token']}"})
    assert response.status_code == 200 and response.get_json()["role"] == "owner"


def test_a_person_with_many_grants_still_gets_a_token_that_verifies(api_verifier):
    many = tuple((f"LVG-{900000 + n}", "owner") for n in range(25))
    token = tokens(logged_in_browser(grants=many)[0])
    access = api_verifier.verify(token["access_token"])
    assert len(access.grants) == 12 and access.claims["grants_complete"] is False
    assert len(token["access_token"]) < 4096


def test_login_attempts_are_rate_limited_per_address():
    browser = requests.Session()
    page = browser.get(f"{ISSUER}/login/smart-id", headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
    csrf = csrf_of(page)
    answers = [browser.post(f"{ISSUER}/login/smart-id", data={"csrf": csrf, "personal_code": "not-a-code"},
                            headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10).status_code for _ in range(31)]
    assert answers[:30] == [422] * 30 and answers[30] == 429
    other = browser.post(f"{ISSUER}/login/smart-id", data={"csrf": csrf, "personal_code": "x"},
                         headers={"X-Forwarded-For": "203.0.113.10"}, timeout=10)
    assert other.status_code == 422


def test_login_form_without_csrf_token_is_refused():
    response = requests.post(f"{ISSUER}/login/smart-id", data={"personal_code": "040404-10003"}, timeout=10)
    assert response.status_code == 400


def test_a_property_manager_gets_contract_scoped_tokens(gateway, new_contract):
    """More grants than a token carries: the plain token has the first 12 and says so; RFC 8707 ``resource``
    asks for a token scoped to chosen contracts (at the code exchange or a refresh); /me lists them all."""
    from tests.support.helpers import bearer

    real = new_contract().number
    numbers = sorted([real] + [f"PM-{i:03d}" for i in range(19)])
    browser, _, _ = logged_in_browser(grants=tuple((n, "owner") for n in numbers))
    verifier, challenge = pkce()
    plain = exchange(code_for(browser, (verifier, challenge)), verifier).json()
    claims = decode(plain["access_token"])
    assert len(claims["grants"]) == 12 and claims["grants_complete"] is False
    me = gateway.get("/api/v1/me", headers=bearer(plain["access_token"])).get_json()
    assert [g["contract"] for g in me["grants"]] == numbers and me["token_grants_complete"] is False
    listed = gateway.get("/api/v1/contracts", headers=bearer(plain["access_token"])).get_json()["items"]
    assert sorted(i["number"] for i in listed if i["number"] in numbers) == numbers

    scoped = refresh_with(plain["refresh_token"], resource=f"urn:klients:contract:{real}")
    assert scoped.status_code == 200, scoped.text
    scoped_claims = decode(scoped.json()["access_token"])
    assert list(scoped_claims["grants"]) == [real] and scoped_claims["grants_complete"] is False
    assert gateway.get(f"/api/v1/contracts/{real}/balance",
                       headers=bearer(scoped.json()["access_token"])).status_code == 200

    verifier, challenge = pkce()
    two = exchange(code_for(browser, (verifier, challenge)), verifier,
                   resource=[f"urn:klients:contract:{numbers[-1]}", f"urn:klients:contract:{numbers[-2]}"]).json()
    assert set(decode(two["access_token"])["grants"]) == {numbers[-1], numbers[-2]}
    for bad in ("urn:klients:contract:LVG-100004", "https://evil.example/", "urn:klients:contract:"):
        verifier, challenge = pkce()
        refused = exchange(code_for(browser, (verifier, challenge)), verifier, resource=bad)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_target", bad


def refresh_with(refresh_token: str, **extra: str):
    return requests.post(f"{ISSUER}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                  "client_id": PORTAL, **extra}, timeout=10)


def decode(token: str) -> dict:
    """Return a token's claims, verified (the JWKS of identity)."""
    return TokenVerifier([TrustedIssuer(ISSUER, f"{ISSUER}/jwks.json", "klients-api")]).verify(token).claims
