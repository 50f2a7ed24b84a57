"""The real Keycloak for the tests, a pytest plugin (``tests/conftest.py`` registers it): the staff realm
operators sign in with (``staff``), the portal realm that fronts identity (``fronted``), and signing in
through each as a browser does."""

from __future__ import annotations

import html
import os
import re
import secrets
import sys
from dataclasses import replace
from urllib.parse import parse_qs, urlencode, urljoin, urlparse

import pytest
import requests
from sqlalchemy import select

from klients_identity.models import Person
from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import ISSUER, REDIRECT, pkce
from tests.support.stack import BIN, ROOT, identity_session

sys.path.insert(0, str(ROOT / "deploy" / "keycloak"))
import portal_realm
import staff_realm

KEYCLOAK = os.environ["KEYCLOAK_URL"]
STAFF = replace(staff_realm.StaffRealm.from_env(), realm=os.environ["STAFF_REALM"])
PORTAL = portal_realm.PortalRealm.from_env()
REALM_URL = PORTAL.issuer(KEYCLOAK)
OIDC = f"{REALM_URL}/protocol/openid-connect"
PORTAL_CLIENT_ID = portal_realm.PORTAL_CLIENT
HOLDER = "050405-10009"
TAGS = re.compile(r"<[^>]+>|\s+")  # Smart-ID DEMO "QUALIFIED OK1"


@pytest.fixture(scope="module")
def staff():
    """The staff realm provisioned (as code, idempotently), with an operator who holds no role."""
    admin = staff_realm.admin_client(KEYCLOAK)
    staff_realm.provision(admin, STAFF)
    staff_realm.ensure_user(admin, "norole", "Nora", "Bezlomas", (), STAFF.demo_password)
    return admin


def operator_browser(username: str = "operator") -> requests.Session:
    """Sign in to identity's operator pages through Keycloak, as a browser does."""
    browser = requests.Session()
    page = browser.get(f"{ISSUER}/operator/", timeout=10)
    for cookie in browser.cookies:  # Keycloak's cookies are Secure; browsers send them to http://127.0.0.1
        cookie.secure = False
    action = re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text) or \
        re.search(r'action="([^"]+)"[^>]*id="kc-form-login"', page.text)
    assert action, page.text[:500]
    signed = browser.post(html.unescape(action.group(1)), data={"username": username,
                                                                "password": STAFF.demo_password, "credentialId": ""},
                          timeout=10)
    assert signed.url.startswith(f"{ISSUER}/operator"), signed.url
    return browser


@pytest.fixture(scope="module")
def fronted(stack, rpc):
    """The portal realm provisioned, Keycloak registered at identity, and the grants sync running."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine, transaction
    from klients_identity.oauth.registration import ensure_broker_client
    from klients_identity.settings import Settings

    admin = staff_realm.admin_client(KEYCLOAK)
    portal_realm.provision(admin, PORTAL)
    settings = replace(Settings.from_env(), portal_token_issuer="keycloak")
    with transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))) as session:
        ensure_broker_client(session, settings)
    stack.start("identity-keycloak-sync", str(BIN / "klients-identity"), "run", component="identity",
                env={"PORTAL_TOKEN_ISSUER": "keycloak"})
    admin.change_current_realm(PORTAL.realm)
    yield admin
    stack.stop("identity-keycloak-sync")


def _follow(browser: requests.Session, response: requests.Response) -> requests.Response | str:
    """Follow redirects by hand until a page, or until the portal's callback (returned as a URL)."""
    while response.status_code in (301, 302, 303, 307):
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(REDIRECT):
            return location
        for cookie in browser.cookies:  # Keycloak's cookies are Secure; browsers send them to 127.0.0.1
            cookie.secure = False
        response = browser.get(location, allow_redirects=False, timeout=15)
    return response


def broker(personal_code: str, start: str | None = None) -> tuple[requests.Session, str, str, requests.Response | str]:
    """Walk portal → Keycloak → identity → Smart-ID simulator → back as a browser; return the browser, the
    state and PKCE verifier sent, and where it ended: the portal's callback URL, or the page it stopped on.
    With ``start`` (a client portal's /login) the walk starts there and goes on through its callback."""
    browser = requests.Session()
    # Each login from its own (documentation-range) address: identity limits login attempts per address,
    # and the suite logs in from one machine many times a minute.
    browser.headers["X-Forwarded-For"] = f"198.51.100.{secrets.randbelow(250) + 1}"
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    page = _follow(browser, browser.get(start or f"{OIDC}/auth?" + urlencode({
        "client_id": portal_realm.PORTAL_CLIENT, "redirect_uri": REDIRECT, "response_type": "code",
        "scope": "openid", "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
        "kc_idp_hint": portal_realm.IDP_ALIAS}), allow_redirects=False, timeout=15))
    assert not isinstance(page, str) and page.url.startswith(f"{ISSUER}/login"), getattr(page, "url", page)
    form = browser.get(f"{ISSUER}/login/smart-id", timeout=10)
    answer: requests.Response | str = browser.post(f"{ISSUER}/login/smart-id", data={
        "csrf": csrf_of(form), "personal_code": personal_code}, allow_redirects=False, timeout=10)
    for _ in range(40):
        answer = _follow(browser, answer)
        if isinstance(answer, str) or 'http-equiv="refresh"' not in answer.text:
            break
        answer = browser.get(f"{ISSUER}/login/smart-id/wait", allow_redirects=False, timeout=15)
    return browser, state, verifier, answer


def brokered_login(personal_code: str = HOLDER) -> tuple[requests.Session, dict[str, str]]:
    """A brokered login that must succeed; return the browser and Keycloak's token response."""
    browser, state, verifier, answer = broker(personal_code)
    assert isinstance(answer, str), f"{answer.status_code}: {TAGS.sub(' ', answer.text)[-300:]}"
    query = {k: v[0] for k, v in parse_qs(urlparse(answer).query).items()}
    assert query["state"] == state and query["iss"] == REALM_URL
    token = requests.post(f"{OIDC}/token", data={
        "grant_type": "authorization_code", "code": query["code"], "redirect_uri": REDIRECT,
        "client_id": portal_realm.PORTAL_CLIENT, "code_verifier": verifier}, timeout=15)
    assert token.status_code == 200, token.text
    return browser, token.json()


def person_id(personal_code: str = HOLDER) -> str:
    with identity_session() as session:
        return session.scalar(select(Person.id).where(Person.personal_code == personal_code))
