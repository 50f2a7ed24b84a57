"""The OpenID Foundation's basic OP certification plan (oidcc-basic-certification-test-plan, code flow),
module by module, against the running identity over HTTP; each test is named after its module and makes
the checks the module makes, the ID-token checks included (signature, iss, aud, exp, iat, nonce, sub,
at_hash, c_hash, auth_time with max_age). The table in docs/identity.md maps modules to tests.

Every request carries PKCE S256, which identity requires of every client (RFC 9700). The suite's client is
a confidential one (client_secret_basic), registered with the identity CLI's own function. Below the
modules: the black-box probe's findings of issue 14 (rows 3, 8 and 12) at the authorization endpoint."""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet
from sqlalchemy import update

from klients_common.digests import secret_digest as digest
from klients_identity.models import AuthorizationCode, Person
from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import ISSUER, finish, logged_in_browser, pkce, start_smartid
from tests.support.stack import identity_session

pytestmark = pytest.mark.usefixtures("stack")

RP = "http://127.0.0.1:18997/cb"
RP_QUERY = "http://127.0.0.1:18997/cb?foo=bar"
SIM = "http://127.0.0.1:18091"


@dataclass
class Rp:
    """The certification suite's client: confidential, two redirect URIs (one with a query)."""

    client_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.client_id, self.secret


@pytest.fixture(scope="module")
def rp(stack) -> Rp:
    from klients_identity.oauth.registration import add_client

    client_id = f"oidcc-basic-{int(time.time())}"
    with identity_session() as session:
        secret = add_client(session, argparse.Namespace(
            client_id=client_id, name="OIDF basic OP plan", confidential=True, redirect_uri=[RP, RP_QUERY],
            post_logout_redirect_uri=None, scopes="openid profile email offline_access"))
    return Rp(client_id, secret)


# --- the suite's steps ---------------------------------------------------------------------------------

_addresses = itertools.count(1)


def own_address(browser: requests.Session) -> requests.Session:
    """Give a browser its own client address (identity believes one proxy in the suite): logins are rate-limited
    per address, and this module logs in many times."""
    n = next(_addresses)
    browser.headers.setdefault("X-Forwarded-For", f"198.51.{100 + n // 250}.{n % 250 + 1}")
    return browser


def send_authorization(browser: requests.Session, rp: Rp, *, method: str = "GET", challenge: str | None = None,
                       **params: str | None) -> requests.Response:
    """Send an authorization request (PKCE S256 added) without following its redirect."""
    query = {"client_id": rp.client_id, "redirect_uri": RP, "response_type": "code", "scope": "openid",
             "state": "xyz-state", "nonce": f"n-{secrets.token_urlsafe(8)}",
             "code_challenge": challenge or pkce()[1], "code_challenge_method": "S256", **params}
    query = {k: v for k, v in query.items() if v is not None}
    own_address(browser)
    if method == "POST":
        return browser.post(f"{ISSUER}/authorize", data=query, allow_redirects=False, timeout=10)
    return browser.get(f"{ISSUER}/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)


def callback(response: requests.Response, redirect_uri: str = RP) -> dict[str, str]:
    """Return the authorization response's parameters at the client (the redirect must go there)."""
    assert response.status_code in (302, 303), response.text[:300]
    location = response.headers["Location"]
    parts, expected = urlparse(location), urlparse(redirect_uri)
    assert (parts.scheme, parts.netloc, parts.path) == (expected.scheme, expected.netloc, expected.path), location
    assert not parts.fragment
    return {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}


def token_request(rp: Rp, code: str, verifier: str, redirect_uri: str = RP) -> requests.Response:
    return requests.post(f"{ISSUER}/token", auth=rp.auth, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier})


def code_flow(rp: Rp, browser: requests.Session | None = None, *, redirect_uri: str = RP,
              **params: str | None) -> dict:
    """Run the whole code flow; return the callback's parameters, the token response and the code."""
    browser = browser or logged_in_browser()[0]
    verifier, challenge = pkce()
    params.setdefault("nonce", f"n-{secrets.token_urlsafe(8)}")
    answer = callback(send_authorization(browser, rp, challenge=challenge, redirect_uri=redirect_uri, **params),
                      redirect_uri)
    assert answer.get("state") == params.get("state", "xyz-state") and answer["iss"] == ISSUER, answer
    response = token_request(rp, answer["code"], verifier, redirect_uri)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"] and tokens["id_token"]
    return {"callback": answer, "tokens": tokens, "code": answer["code"], "browser": browser,
            "nonce": params["nonce"]}


def jwks() -> KeySet:
    return KeySet.import_key_set(requests.get(f"{ISSUER}/jwks.json", timeout=10).json())


def half_hash(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()[:16]).rstrip(b"=").decode()


def check_id_token(rp: Rp, id_token: str, *, nonce: str | None = "", access_token: str | None = None,
                   code: str | None = None, max_age: int | None = None, sub: str | None = None) -> dict:
    """The checks every module makes of an ID token (OIDC Core 3.1.3.7); return its claims."""
    token = jwt.decode(id_token, jwks(), algorithms=["RS256"])  # signature by a published key, RS256 only
    assert token.header["alg"] == "RS256" and token.header.get("kid")
    claims = token.claims
    assert claims["iss"] == ISSUER
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    assert rp.client_id in audience
    if len(audience) > 1:
        assert claims.get("azp") == rp.client_id
    now = time.time()
    assert claims["exp"] > now and now - 300 < claims["iat"] <= now + 5
    assert isinstance(claims["sub"], str) and 0 < len(claims["sub"]) <= 255
    if sub is not None:
        assert claims["sub"] == sub
    if nonce is None:
        assert "nonce" not in claims
    elif nonce:  # "": whichever nonce the request sent (checked by the caller)
        assert claims["nonce"] == nonce
    if "at_hash" in claims:
        assert access_token is not None and claims["at_hash"] == half_hash(access_token)
    if "c_hash" in claims:
        assert code is not None and claims["c_hash"] == half_hash(code)
    if max_age is not None:
        assert isinstance(claims["auth_time"], int) and now - claims["auth_time"] <= max_age + 5
    return claims


def checked(rp: Rp, flow: dict, **checks) -> dict:
    checks.setdefault("nonce", flow["nonce"])
    return check_id_token(rp, flow["tokens"]["id_token"], access_token=flow["tokens"]["access_token"],
                          code=flow["code"], **checks)


def exchanged(rp: Rp, answer: dict[str, str], verifier: str, **checks) -> dict:
    """Exchange a callback's code; return the checked ID token's claims."""
    tokens = token_request(rp, answer["code"], verifier).json()
    return check_id_token(rp, tokens["id_token"], access_token=tokens["access_token"], code=answer["code"], **checks)


def userinfo(access_token: str, how: str = "get") -> requests.Response:
    if how == "get":
        return requests.get(f"{ISSUER}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    if how == "post-header":
        return requests.post(f"{ISSUER}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10)
    return requests.post(f"{ISSUER}/userinfo", data={"access_token": access_token}, timeout=10)


def smartid_to_end(browser: requests.Session, personal_code: str = "040404-10003") -> requests.Response:
    """Log in with Smart-ID (the simulator's DEMO accounts) on identity's pages; follow identity's own
    redirects and return the first answer that is not one of them (a redirect to the client, or a page)."""
    page = start_smartid(browser, personal_code=personal_code)
    for _ in range(40):
        if page.status_code in (302, 303) or 'http-equiv="refresh"' not in page.text:
            break
        page = browser.get(f"{ISSUER}/login/smart-id/wait", allow_redirects=False, timeout=15)
    while page.status_code in (302, 303) and urljoin(ISSUER + "/", page.headers["Location"]).startswith(ISSUER):
        page = browser.get(urljoin(ISSUER + "/", page.headers["Location"]), allow_redirects=False, timeout=10)
    return page


def smartid_login(browser: requests.Session, first: requests.Response, personal_code: str = "040404-10003"):
    """Follow an authorization request's redirect to identity's login pages, log in with Smart-ID and return
    the resumed authorization request's answer."""
    assert first.status_code == 302 and "/login" in first.headers["Location"], first.headers.get("Location")
    assert browser.get(urljoin(ISSUER + "/", first.headers["Location"]), timeout=10).status_code == 200
    return smartid_to_end(browser, personal_code)


def email_of(person_id: str, email: str = "ilze.liepa@example.lv") -> None:
    with identity_session() as session:
        session.get(Person, person_id).email = email


# --- the modules ---------------------------------------------------------------------------------------

def test_oidcc_server(rp):
    flow = code_flow(rp)
    claims = checked(rp, flow)
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == ISSUER and "code" in meta["response_types_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"] and "openid" in meta["scopes_supported"]
    assert "public" in meta["subject_types_supported"] and meta["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert userinfo(flow["tokens"]["access_token"]).json()["sub"] == claims["sub"]


def test_oidcc_response_type_missing(rp):
    answer = callback(send_authorization(logged_in_browser()[0], rp, response_type=None))
    assert answer["error"] in ("unsupported_response_type", "invalid_request") and "code" not in answer
    assert answer["state"] == "xyz-state" and answer["iss"] == ISSUER


def test_oidcc_userinfo_get(rp):
    flow = code_flow(rp, scope="openid profile")
    info = userinfo(flow["tokens"]["access_token"], "get")
    assert info.status_code == 200 and info.headers["Content-Type"].startswith("application/json")
    assert info.json()["sub"] == checked(rp, flow)["sub"] and info.json()["given_name"] == "Ilze"


def test_oidcc_userinfo_post_header(rp):
    flow = code_flow(rp)
    info = userinfo(flow["tokens"]["access_token"], "post-header")
    assert info.status_code == 200 and info.json()["sub"] == checked(rp, flow)["sub"]


def test_oidcc_userinfo_post_body(rp):
    """Refused properly: the token in a form body (RFC 6750 2.2, optional) is not accepted; the answer says
    a bearer token is needed (401 with WWW-Authenticate: Bearer), never the claims or a 500."""
    flow = code_flow(rp)
    info = userinfo(flow["tokens"]["access_token"], "post-body")
    assert info.status_code == 401 and info.headers["WWW-Authenticate"].startswith("Bearer")
    assert "sub" not in info.text


def test_oidcc_ensure_request_without_nonce_succeeds_for_code_flow(rp):
    flow = code_flow(rp, nonce=None)
    checked(rp, flow, nonce=None)


def test_oidcc_scope_profile(rp):
    flow = code_flow(rp, scope="openid profile")
    info = userinfo(flow["tokens"]["access_token"]).json()
    assert {"given_name", "family_name", "name", "locale"} <= set(info) and "email" not in info


def test_oidcc_scope_email(rp):
    browser, person, _ = logged_in_browser()
    email_of(person)
    flow = code_flow(rp, browser, scope="openid email")
    info = userinfo(flow["tokens"]["access_token"]).json()
    assert info["email"] == "ilze.liepa@example.lv" and info["email_verified"] is True and "given_name" not in info


def test_oidcc_scope_all(rp):
    """Every scope identity offers (scopes_supported: profile, email, offline_access); the OIDC scopes it does
    not offer (address, phone) are refused with invalid_scope rather than silently dropped."""
    browser, person, _ = logged_in_browser()
    email_of(person)
    flow = code_flow(rp, browser, scope="openid profile email offline_access")
    info = userinfo(flow["tokens"]["access_token"]).json()
    assert {"sub", "given_name", "family_name", "name", "email", "email_verified"} <= set(info)
    assert flow["tokens"]["refresh_token"]
    answer = callback(send_authorization(browser, rp, scope="openid profile email address phone"))
    assert answer["error"] == "invalid_scope" and answer["state"] == "xyz-state" and "code" not in answer


def test_oidcc_ensure_other_scope_order_succeeds(rp):
    browser, person, _ = logged_in_browser()
    email_of(person)
    flow = code_flow(rp, browser, scope="email openid")
    checked(rp, flow)
    assert userinfo(flow["tokens"]["access_token"]).json()["email"] == "ilze.liepa@example.lv"


def display_accepted(rp: Rp, display: str) -> None:
    """A display value is accepted; without a login, the login page is shown."""
    checked(rp, code_flow(rp, display=display))
    anonymous = requests.Session()
    first = send_authorization(anonymous, rp, display=display)
    assert first.status_code == 302 and "/login" in first.headers["Location"]
    assert anonymous.get(f"{ISSUER}{first.headers['Location']}", timeout=10).status_code == 200


def test_oidcc_display_page(rp):
    display_accepted(rp, "page")


def test_oidcc_display_popup(rp):
    display_accepted(rp, "popup")


def test_oidcc_prompt_login(rp):
    """A login exists; prompt=login sends the person to log in again, and the new ID token's auth_time is
    that new login's."""
    browser = requests.Session()
    verifier, challenge = pkce()
    answer = callback(smartid_login(browser, send_authorization(browser, rp, challenge=challenge)))
    first = exchanged(rp, answer, verifier)
    time.sleep(1.1)
    verifier, challenge = pkce()
    answer = callback(smartid_login(browser, send_authorization(browser, rp, prompt="login", challenge=challenge)))
    second = exchanged(rp, answer, verifier)
    assert second["auth_time"] > first["auth_time"] and second["sub"] == first["sub"]
    # The fresh login answered that one request only: the next prompt=login needs another login.
    assert "/login" in send_authorization(browser, rp, prompt="login").headers["Location"]


def test_oidcc_prompt_none_not_logged_in(rp):
    answer = callback(send_authorization(requests.Session(), rp, prompt="none"))
    assert answer["error"] in ("login_required", "interaction_required", "consent_required",
                               "account_selection_required")
    assert answer["state"] == "xyz-state" and answer["iss"] == ISSUER and "code" not in answer


def test_oidcc_prompt_none_logged_in(rp):
    browser, person, _ = logged_in_browser()
    checked(rp, code_flow(rp, browser, prompt="none"), sub=person)


def test_oidcc_max_age_1(rp):
    """A login older than a second: max_age=1 asks for a new login, whose auth_time the ID token carries."""
    browser, _, _ = logged_in_browser(auth_age=timedelta(seconds=5))
    verifier, challenge = pkce()
    answer = callback(smartid_login(browser, send_authorization(browser, rp, max_age="1", challenge=challenge)))
    exchanged(rp, answer, verifier, max_age=30)


def test_oidcc_max_age_10000(rp):
    browser, person, _ = logged_in_browser(auth_age=timedelta(minutes=5))
    claims = checked(rp, code_flow(rp, browser, max_age="10000"), max_age=10000, sub=person)
    assert 290 <= time.time() - claims["auth_time"] <= 330


def test_oidcc_id_token_hint(rp):
    browser, person, _ = logged_in_browser()
    first = code_flow(rp, browser)
    second = code_flow(rp, browser, prompt="none", id_token_hint=first["tokens"]["id_token"])
    assert checked(rp, second, sub=person)["sub"] == checked(rp, first)["sub"]


def test_oidcc_login_hint(rp):
    anonymous = requests.Session()
    first = send_authorization(anonymous, rp, login_hint="040404-10003")
    assert "/login" in first.headers["Location"]
    anonymous.get(f"{ISSUER}{first.headers['Location']}", timeout=10)
    page = anonymous.get(f"{ISSUER}/login/smart-id", timeout=10)
    assert 'value="040404-10003"' in page.text


def test_oidcc_ui_locales(rp):
    anonymous = requests.Session()
    first = send_authorization(anonymous, rp, ui_locales="en-GB en")
    page = anonymous.get(f"{ISSUER}{first.headers['Location']}", timeout=10)
    assert '<html lang="en">' in page.text and "Choose how to log in" in page.text


def test_oidcc_claims_locales(rp):
    checked(rp, code_flow(rp, scope="openid profile", claims_locales="en"))


def test_oidcc_ensure_request_with_unknown_parameter_succeeds(rp):
    checked(rp, code_flow(rp, extra="foobar", another_one="x"))


def test_oidcc_ensure_request_with_acr_values_succeeds(rp):
    claims = checked(rp, code_flow(rp, acr_values="http://eidas.europa.eu/LoA/substantial 1 2"))
    assert claims["acr"] == "http://eidas.europa.eu/LoA/high"


def test_oidcc_codereuse(rp):
    """The second exchange of a code fails, and what the first one issued is revoked (RFC 6749 4.1.2)."""
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    answer = callback(send_authorization(browser, rp, challenge=challenge))
    first = token_request(rp, answer["code"], verifier).json()
    reused = token_request(rp, answer["code"], verifier)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert userinfo(first["access_token"]).status_code == 401


def test_oidcc_codereuse_30seconds(rp):
    """As oidcc-codereuse, the second use 30 s later: the code's timestamps are moved back 30 s in the
    database instead of waiting (it would still be within its 60 s lifetime had it not been used)."""
    browser, _, _ = logged_in_browser()
    verifier, challenge = pkce()
    answer = callback(send_authorization(browser, rp, challenge=challenge))
    first = token_request(rp, answer["code"], verifier).json()
    with identity_session() as session:
        session.execute(update(AuthorizationCode).where(AuthorizationCode.code_hash == digest(answer["code"]))
                        .values(used_at=AuthorizationCode.used_at - timedelta(seconds=30),
                                expires_at=AuthorizationCode.expires_at - timedelta(seconds=30)))
    reused = token_request(rp, answer["code"], verifier)
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert userinfo(first["access_token"]).status_code == 401


@pytest.mark.parametrize("redirect_uri", ["https://evil.example/cb", RP + "/other", "http://127.0.0.1:18997/"])
def test_oidcc_ensure_registered_redirect_uri(rp, redirect_uri):
    response = send_authorization(logged_in_browser()[0], rp, redirect_uri=redirect_uri)
    assert response.status_code == 400 and "Location" not in response.headers
    assert 'id="error-message"' in response.text


def unsigned_request_object(rp: Rp, **claims: str) -> str:
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"oauth-authz-req+jwt"}').rstrip(b"=").decode()
    body = {"iss": rp.client_id, "aud": ISSUER, "client_id": rp.client_id, "response_type": "code",
            "scope": "openid", "redirect_uri": RP, "state": "xyz-state", **claims}
    import json

    return f"{header}.{base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b'=').decode()}."


def test_oidcc_ensure_request_object_with_redirect_uri(rp):
    """Request objects are not supported (discovery: request_parameter_supported false): refused with
    request_not_supported at the redirect URI, never processed or ignored."""
    response = send_authorization(logged_in_browser()[0], rp, request=unsigned_request_object(rp))
    answer = callback(response)
    assert answer["error"] == "request_not_supported" and answer["state"] == "xyz-state" and "code" not in answer


def test_oidcc_unsigned_request_object_supported_correctly_or_rejected_as_unsupported(rp):
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
    assert meta["request_parameter_supported"] is False and meta["request_uri_parameter_supported"] is False
    assert "request_object_signing_alg_values_supported" not in meta
    answer = callback(send_authorization(logged_in_browser()[0], rp, request=unsigned_request_object(rp),
                                         nonce="n-1", state="st-2"))
    assert answer["error"] == "request_not_supported" and answer["state"] == "st-2" and answer["iss"] == ISSUER


def test_oidcc_refresh_token(rp):
    flow = code_flow(rp, scope="openid offline_access")
    original = checked(rp, flow)
    refreshed = requests.post(f"{ISSUER}/token", auth=rp.auth, timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": flow["tokens"]["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["access_token"] != flow["tokens"]["access_token"] and body["refresh_token"]
    assert userinfo(body["access_token"]).json()["sub"] == original["sub"]
    if "id_token" in body:  # OIDC Core 12.2: same iss, sub, aud; no nonce check
        claims = check_id_token(rp, body["id_token"], nonce="", access_token=body["access_token"])
        assert claims["sub"] == original["sub"] and claims["iat"] >= original["iat"]
    other = requests.post(f"{ISSUER}/token", timeout=10, data={  # another client cannot use it
        "grant_type": "refresh_token", "refresh_token": body["refresh_token"], "client_id": "klients-portal"})
    assert other.status_code in (400, 401) and other.json()["error"] in ("invalid_grant", "invalid_client")


def test_oidcc_server_rotate_keys(rp):
    """A new key (the CLI's rotate-keys --now) signs new ID tokens; the JWKS publishes it and the old one, so
    tokens of both verify."""
    from sqlalchemy import delete

    from klients_identity.models import SigningKey
    from klients_identity.oauth import keys
    from tests.support.stack import wait_until

    before = code_flow(rp)
    with identity_session() as session:
        old_kid = keys.current(session).kid
        new_kid = keys.rotate(session, publish_ahead=0, token_ttl=300).kid
    try:
        wait_until("the new key signs", lambda: jws.extract_compact(
            code_flow(rp)["tokens"]["id_token"].encode()).protected["kid"] == new_kid, timeout=15)
        after = code_flow(rp)
        assert {old_kid, new_kid} <= {k["kid"] for k in requests.get(f"{ISSUER}/jwks.json", timeout=10).json()["keys"]}
        checked(rp, after)
        checked(rp, before)
    finally:
        with identity_session() as session:
            session.execute(delete(SigningKey).where(SigningKey.kid == new_kid))
            session.execute(update(SigningKey).where(SigningKey.kid == old_kid).values(retire_at=None))
        keys.forget_cached()
        time.sleep(keys.CURRENT_CACHE_SECONDS)  # identity's own cache of the signing key


def test_oidcc_ensure_post_request_succeeds(rp):
    browser, person, _ = logged_in_browser()
    verifier, challenge = pkce()
    posted = send_authorization(browser, rp, method="POST", challenge=challenge, scope="openid profile")
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/authorize?")
    answer = callback(browser.get(f"{ISSUER}{posted.headers['Location']}", allow_redirects=False, timeout=10))
    tokens = token_request(rp, answer["code"], verifier).json()
    check_id_token(rp, tokens["id_token"], access_token=tokens["access_token"], sub=person)


def test_oidcc_ensure_redirect_uri_in_authorization_request(rp):
    response = send_authorization(logged_in_browser()[0], rp, redirect_uri=None)
    assert response.status_code == 400 and "Location" not in response.headers


def test_oidcc_redirect_uri_query_ok(rp):
    flow = code_flow(rp, redirect_uri=RP_QUERY)
    assert flow["callback"]["foo"] == "bar"
    checked(rp, flow)


def refused_on_a_page(rp: Rp, redirect_uri: str) -> None:
    response = send_authorization(logged_in_browser()[0], rp, redirect_uri=redirect_uri)
    assert response.status_code == 400 and "Location" not in response.headers


def test_oidcc_redirect_uri_query_mismatch(rp):
    refused_on_a_page(rp, RP_QUERY.replace("bar", "zz"))


def test_oidcc_redirect_uri_query_added(rp):
    refused_on_a_page(rp, RP + "?foo=bar&added=1")
    refused_on_a_page(rp, RP + "?")


def test_oidcc_idtoken_signature(rp):
    flow = code_flow(rp)
    id_token = flow["tokens"]["id_token"]
    checked(rp, flow)
    head, body, signature = id_token.split(".")
    forged = base64.urlsafe_b64decode(body + "==").replace(b'"sub"', b'"xub"')
    tampered = f"{head}.{base64.urlsafe_b64encode(forged).rstrip(b'=').decode()}.{signature}"
    with pytest.raises(BadSignatureError):
        jwt.decode(tampered, jwks(), algorithms=["RS256"])
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode() + f".{body}."
    with pytest.raises(JoseError):  # "none" is not an accepted algorithm
        jwt.decode(unsigned, jwks(), algorithms=["RS256"])


# --- issue 14, row 3: a fresh login satisfies only the request that asked for it --------------------------

def login_directly(browser: requests.Session, personal_code: str = "040404-10003") -> None:
    """Log in at identity itself (no authorization request waiting)."""
    own_address(browser)
    ended = finish(browser, start_smartid(browser, personal_code=personal_code))
    assert 'id="signed-in"' in ended.text


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "0"}])
def test_a_login_made_directly_at_identity_does_not_answer_a_later_prompt_login_or_max_age_0(rp, params):
    browser = requests.Session()
    login_directly(browser)
    response = send_authorization(browser, rp, **params)
    assert response.status_code == 302 and "/login" in response.headers["Location"], response.headers
    assert not response.headers["Location"].startswith(RP)


def test_a_fresh_login_answers_its_own_request_once_and_not_a_different_one(rp):
    browser = requests.Session()
    answer = callback(smartid_login(browser, send_authorization(browser, rp, prompt="login", state="mine")))
    assert answer["state"] == "mine" and answer["code"]
    # The same request again (replayed), or any other one, is judged by the login's age as usual.
    assert "/login" in send_authorization(browser, rp, prompt="login", state="mine").headers["Location"]
    assert "/login" in send_authorization(browser, rp, max_age="0", state="other").headers["Location"]


# --- row 8: bad input at /authorize is a 4xx, never a 500 ---------------------------------------------------

@pytest.mark.parametrize("bad", ['http://127.0.0.1:18997/cb"', 'x"><script>alert(1)</script>', "a\\b", "ā€\x7f"])
def test_a_quote_or_odd_characters_in_redirect_uri_give_a_clear_400(rp, bad):
    response = send_authorization(logged_in_browser()[0], rp, redirect_uri=bad)
    assert response.status_code == 400 and "Location" not in response.headers
    assert "<script>" not in response.text


@pytest.mark.parametrize("bad", ['"', 'code"', "code\\", "tōken", "<b>code</b>"])
def test_a_quote_or_odd_characters_in_response_type_go_back_as_unsupported_response_type(rp, bad):
    answer = callback(send_authorization(logged_in_browser()[0], rp, response_type=bad))
    assert answer["error"] == "unsupported_response_type" and answer["state"] == "xyz-state"
    assert '"' not in answer.get("error_description", "") and "\\" not in answer.get("error_description", "")


def test_odd_characters_in_scope_and_other_values_give_4xx(rp):
    for params in ({"scope": 'openid "x'}, {"code_challenge_method": '"'}, {"prompt": '"'}, {"max_age": "²"},
                   {"client_id": '"'}, {"acr_values": '"\\'}, {"state": '"\\ā'}):
        response = send_authorization(logged_in_browser()[0], rp, **params)
        assert response.status_code in (302, 303, 400), (params, response.status_code)
    # Percent-encoded bytes that are not UTF-8.
    odd = requests.Session().get(f"{ISSUER}/authorize?client_id={rp.client_id}&redirect_uri=%FF%FE&state=%C3"
                                 "&response_type=%E2%82", allow_redirects=False, timeout=10)
    assert odd.status_code == 400


# --- row 12: request objects, cancelled and failed logins, client registration ------------------------------

def test_request_uri_is_refused_with_request_uri_not_supported(rp):
    answer = callback(send_authorization(logged_in_browser()[0], rp, request_uri="https://rp.example/req.jwt"))
    assert answer["error"] == "request_uri_not_supported" and answer["state"] == "xyz-state"
    assert answer["iss"] == ISSUER and "code" not in answer


def test_a_request_object_with_an_unregistered_redirect_uri_is_not_followed(rp):
    response = send_authorization(logged_in_browser()[0], rp, request=unsigned_request_object(rp),
                                  redirect_uri="https://evil.example/cb")
    assert response.status_code == 400 and "Location" not in response.headers


def cancel_button(page: requests.Response) -> dict[str, str]:
    form = re.search(r'<form method="post" action="([^"]+)"><input type="hidden" name="csrf" value="([^"]+)">'
                     r'<button type="submit" class="secondary" id="cancel-login">', page.text)
    assert form, page.text[:500]
    return {"action": unescape(form.group(1)), "csrf": form.group(2)}


def press_cancel(browser: requests.Session, page: requests.Response) -> requests.Response:
    button = cancel_button(page)
    return browser.post(f"{ISSUER}{button['action']}", data={"csrf": button["csrf"]}, allow_redirects=False,
                        timeout=10)


def test_cancelling_on_the_method_choice_returns_access_denied_to_the_client(rp):
    browser = requests.Session()
    first = send_authorization(browser, rp, state="s-cancel")
    choose = browser.get(f"{ISSUER}{first.headers['Location']}", timeout=10)
    answer = callback(press_cancel(browser, choose))
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-cancel", ISSUER)
    assert "code" not in answer
    # Once: the request is no longer waiting, and a login now does not resume it.
    assert 'id="cancel-login"' not in browser.get(f"{ISSUER}/login", timeout=10).text


def test_refusing_in_the_smart_id_app_returns_access_denied_to_the_client(rp):
    browser = requests.Session()
    first = send_authorization(browser, rp, state="s-refused")
    answer = callback(smartid_login(browser, first, "030403-10016"))  # the simulator's account that refuses
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-refused", ISSUER)


def test_cancelling_at_eparaksts_returns_access_denied_to_the_client(rp):
    browser = requests.Session()
    back = eparaksts_decision(browser, send_authorization(browser, rp, state="s-eparaksts"), action="cancel")
    answer = callback(back)
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-eparaksts", ISSUER)


def post_form(browser: requests.Session, page: requests.Response, **extra: str) -> requests.Response:
    """Submit the first form of a page (its action, its hidden fields) as a browser would, not following."""
    action = unescape(re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1))
    fields = {unescape(n): unescape(v) for n, v in re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"',
                                                              page.text)}
    return browser.post(urljoin(page.url, action), data={**fields, **extra}, allow_redirects=False, timeout=10)


def test_cancelling_at_the_bank_returns_access_denied_to_the_client(rp):
    browser = requests.Session()
    first = send_authorization(browser, rp, state="s-bank")
    browser.get(f"{ISSUER}{first.headers['Location']}", timeout=10)
    banks = browser.get(f"{ISSUER}/login/bank", timeout=10)
    to_bank = browser.post(f"{ISSUER}/login/bank/swedbank", data={"csrf": csrf_of(banks)}, timeout=10)
    bank_page = post_form(browser, to_bank)
    bank_page.url = urljoin(to_bank.url, re.search(r'<form[^>]*action="([^"]+)"', to_bank.text).group(1))
    returning = post_form(browser, bank_page, action="cancel")  # the bank sends the person back, no response
    back = post_form(browser, returning)
    while back.status_code in (302, 303) and urljoin(ISSUER + "/", back.headers["Location"]).startswith(ISSUER):
        back = browser.get(urljoin(ISSUER + "/", back.headers["Location"]), allow_redirects=False, timeout=10)
    answer = callback(back)
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-bank", ISSUER)


def test_a_failed_login_offers_to_return_to_the_client_with_access_denied(rp):
    requests.post(f"{SIM}/test/next-session", json={"endResult": "TIMEOUT"}, timeout=10).raise_for_status()
    browser = requests.Session()
    first = send_authorization(browser, rp, state="s-timeout")
    failed = smartid_login(browser, first)
    assert failed.status_code == 401 and 'id="error-message"' in failed.text
    answer = callback(press_cancel(browser, failed))
    assert (answer["error"], answer["state"]) == ("access_denied", "s-timeout")


def eparaksts_decision(browser: requests.Session, first: requests.Response, **decision: str) -> requests.Response:
    """From an authorization request's redirect to identity, go to eParaksts (the simulator), decide there and
    come back to identity; return identity's answer (not followed)."""
    browser.get(f"{ISSUER}{first.headers['Location']}", timeout=10)
    to_provider = browser.get(f"{ISSUER}/login/eparaksts", allow_redirects=False, timeout=10)
    provider_page = browser.get(to_provider.headers["Location"], timeout=10)
    tx = re.search(r'name="tx" value="([^"]+)"', provider_page.text).group(1)
    back = browser.post(provider_page.url, data={"tx": tx, **decision}, allow_redirects=False, timeout=10)
    assert back.headers["Location"].startswith(f"{ISSUER}/login/eparaksts/callback")
    return browser.get(back.headers["Location"], allow_redirects=False, timeout=10)


def test_a_person_without_a_contract_sees_the_next_step_and_can_return_to_the_client(rp):
    browser = requests.Session()
    first = send_authorization(browser, rp, state="s-nocontract", ui_locales="en")
    # eParaksts' example person without a contract (as the browser test of the refusal page uses).
    refused = eparaksts_decision(browser, first, action="confirm", person="PNOLV-161175-19997",
                                 method="urn:eparaksts:authentication:flow:mobileid")
    assert refused.status_code == 403 and "transferred to you" in refused.text, refused.text[:300]
    answer = callback(press_cancel(browser, refused))
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "s-nocontract", ISSUER)


def test_cancel_without_csrf_or_without_a_waiting_request_changes_nothing(rp):
    browser = requests.Session()
    send_authorization(browser, rp)
    assert browser.post(f"{ISSUER}/login/cancel", data={}, allow_redirects=False, timeout=10).status_code == 400
    page = browser.get(f"{ISSUER}/login", timeout=10)
    assert cancel_button(page)  # still waiting
    lone = requests.Session()
    csrf = csrf_of(lone.get(f"{ISSUER}/login/smart-id", timeout=10))
    answer = lone.post(f"{ISSUER}/login/cancel", data={"csrf": csrf}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/login")


@pytest.mark.parametrize(("uri", "ok"), [
    ("https://portal.example.lv/callback", True), ("http://127.0.0.1:4000/cb", True), ("http://[::1]/cb", True),
    ("http://localhost:3000/cb", True), ("http://portal.example.lv/callback", False),
    ("http://127.0.0.1.evil.example/cb", False), ("https://portal.example.lv/cb#frag", False),
    ("javascript:alert(1)", False), ("https://portal.example.lv/c\"b", False), ("/relative/cb", False),
])
def test_add_client_accepts_https_and_loopback_http_redirect_uris_only(stack, uri, ok):
    client_id = f"cli-{hashlib.sha256(uri.encode()).hexdigest()[:10]}"
    done = subprocess.run([sys.executable, "-m", "klients_identity.cli", "add-client", client_id,
                           "--redirect-uri", uri], capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode == 0) is ok, done.stderr
    from klients_identity.models import OAuthClient

    with identity_session() as session:
        assert (session.get(OAuthClient, client_id) is not None) is ok
    if not ok:
        assert "redirect URI" in done.stderr


def test_production_migrate_refuses_the_development_portal_redirect_uri():
    from dataclasses import replace

    from klients_identity.oauth.registration import ensure_portal_client
    from klients_identity.settings import Settings

    production = replace(Settings.from_env(), issuer="https://id.klients.example.lv")
    for dev in (("http://127.0.0.1:3000/callback",), ("https://127.0.0.1/callback",), ("http://portal/cb",)):
        with pytest.raises(ValueError, match="redirect URI"), identity_session() as session:
            ensure_portal_client(session, replace(production, portal_redirect_uris=dev))
    import yaml

    from tests.support.deploy import k8s_config

    uris = k8s_config()["PORTAL_REDIRECT_URIS"].split()
    assert uris and all(u.startswith("https://") and "127.0.0.1" not in u for u in uris)
    assert yaml  # the manifests parse (k8s_config reads them)
