"""Signing in to a Keycloak realm the way a browser does: the authorization-code flow with PKCE,
posting the login form, then exchanging the code. No password grant is needed or enabled."""

from __future__ import annotations

import html
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlparse

import requests

from klients_common.digests import pkce_challenge


def code_flow_token(keycloak_url: str, realm: str, client_id: str, client_secret: str, redirect_uri: str,
                    username: str, password: str) -> dict[str, str]:
    """Return Keycloak's token response for ``username`` after a form login."""
    verifier = secrets.token_urlsafe(48)
    challenge = pkce_challenge(verifier)
    base = f"{keycloak_url}/realms/{realm}/protocol/openid-connect"
    state = secrets.token_urlsafe(16)
    with requests.Session() as browser:
        page = browser.get(f"{base}/auth?" + urlencode({
            "client_id": client_id, "redirect_uri": redirect_uri, "response_type": "code", "scope": "openid",
            "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}), timeout=10)
        page.raise_for_status()
        # Keycloak marks its cookies Secure; browsers still send them to http://127.0.0.1 (a secure
        # context), requests does not. Do what the browser does.
        for cookie in browser.cookies:
            cookie.secure = False
        action = re.search(r'<form[^>]+id="kc-form-login"[^>]+action="([^"]+)"', page.text) or \
            re.search(r'action="([^"]+)"[^>]*id="kc-form-login"', page.text)
        if action is None:
            raise AssertionError("Keycloak login form not found")
        done = browser.post(html.unescape(action.group(1)), data={"username": username, "password": password,
                                                                   "credentialId": ""},
                            allow_redirects=False, timeout=10)
        location = done.headers.get("Location", "")
        if done.status_code != 302 or not location.startswith(redirect_uri):
            raise PermissionError(f"login refused (HTTP {done.status_code})")
        query = parse_qs(urlparse(location).query)
        assert query["state"] == [state]
        token = browser.post(f"{base}/token", data={
            "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect_uri,
            "code_verifier": verifier}, auth=(client_id, client_secret), timeout=10)
        token.raise_for_status()
        return token.json()
