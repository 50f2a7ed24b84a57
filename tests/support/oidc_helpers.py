"""Test helpers for identity's OpenID Connect flows: a browser already logged in at identity (its login
session planted in identity's database, as a finished login leaves it), PKCE, and the code dance."""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from klients_common.digests import pkce_challenge, secret_digest
from klients_identity.models import BrowserSession, Grant, LoginSession, Person
from tests.support.stack import identity_session

ISSUER = os.environ.get("IDENTITY_ISSUER", "http://127.0.0.1:18001")
PORTAL = "klients-portal"
REDIRECT = "http://127.0.0.1:18999/callback"
HIGH = "http://eidas.europa.eu/LoA/high"


def pkce() -> tuple[str, str]:
    """Return (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


def logged_in_browser(*, grants: tuple[tuple[str, ...], ...] = (("LVG-100001", "owner"),), acr: str = HIGH,
                      auth_age: timedelta = timedelta(0)) -> tuple[requests.Session, str, str]:
    """Return a browser with a live login at identity, the person's id and the login's sid."""
    person_id, sid, cookie = str(uuid.uuid4()), secrets.token_urlsafe(24), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with identity_session() as session:
        session.add(Person(id=person_id, given_name="Ilze", family_name="Liepa", language="lv"))
        session.flush()
        for contract, role, *level in grants:
            session.add(Grant(id=str(uuid.uuid4()), person_id=person_id, contract=contract, role=role,
                              level=level[0] if level else None, status="active"))
        session.add(LoginSession(sid=sid, person_id=person_id, acr=acr, amr=["smartid"], auth_time=now - auth_age,
                                 expires_at=now + timedelta(hours=8)))
        session.add(BrowserSession(id_hash=secret_digest(cookie), data={"sid": sid},
                                   expires_at=now + timedelta(hours=8)))
    browser = requests.Session()
    browser.cookies.set("klients_identity", cookie, domain="127.0.0.1", path="/")
    return browser, person_id, sid


def authorize(browser: requests.Session, **params: str) -> requests.Response:
    """Send an authorization request; do not follow the redirect."""
    query = {"client_id": PORTAL, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
             "state": "st-1", **params}
    return browser.get(f"{ISSUER}/authorize?{urlencode({k: v for k, v in query.items() if v is not None})}",
                       allow_redirects=False, timeout=10)


def redirect_params(response: requests.Response) -> dict[str, str]:
    """Return the query parameters of a redirect to the client."""
    assert response.status_code in (302, 303), response.text[:500]
    location = response.headers["Location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


def code_for(browser: requests.Session, verifier_challenge: tuple[str, str] | None = None, **params: str) -> str:
    """Run the authorization request and return the code."""
    challenge = (verifier_challenge or pkce())[1]
    return redirect_params(authorize(browser, code_challenge=challenge, code_challenge_method="S256",
                                     **params))["code"]


def exchange(code: str, verifier: str, *, client_id: str = PORTAL, redirect_uri: str = REDIRECT,
             **extra: str) -> requests.Response:
    """Exchange a code at the token endpoint (as a public client)."""
    return requests.post(f"{ISSUER}/token", data={"grant_type": "authorization_code", "code": code,
                                                  "redirect_uri": redirect_uri, "client_id": client_id,
                                                  "code_verifier": verifier, **extra}, timeout=10)


def refresh(refresh_token: str, client_id: str = PORTAL) -> requests.Response:
    """Use a refresh token."""
    return requests.post(f"{ISSUER}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token,
                                                  "client_id": client_id}, timeout=10)


def start_smartid(browser: requests.Session, **form: str) -> requests.Response:
    """Start a Smart-ID login at identity (the form with its CSRF token)."""
    from tests.support.helpers import csrf_of

    page = browser.get(f"{ISSUER}/login/smart-id", timeout=10)
    return browser.post(f"{ISSUER}/login/smart-id", data={"csrf": csrf_of(page), **form}, timeout=10)


def finish(browser: requests.Session, first: requests.Response) -> requests.Response:
    """Follow the Smart-ID wait page's refreshes until the login ends."""
    response = first
    for _ in range(40):
        if 'http-equiv="refresh"' not in response.text:
            return response
        response = browser.get(f"{ISSUER}/login/smart-id/wait", timeout=15)
    raise AssertionError("the Smart-ID login never ended")
