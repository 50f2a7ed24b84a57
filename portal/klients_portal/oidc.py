"""The portal as a confidential OpenID Connect client: discovery, the authorization request (code flow,
PKCE S256, state, nonce), the code exchange and refresh with ``client_secret_basic``, revocation and the
RP-initiated logout URL. The issuer is configuration (identity, or Keycloak's portal realm): every endpoint
comes from its discovery document."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from klients_common.digests import pkce_challenge

from .store import Tokens, utcnow

DISCOVERY_TTL = 3600.0


class IssuerError(Exception):
    """The issuer did not answer, or answered something unusable."""


class RefreshFailed(Exception):
    """The refresh token no longer works (the login ended, was revoked or expired)."""


@dataclass(frozen=True)
class LoginRequest:
    """What the portal remembers between /login and /callback."""

    state: str
    verifier: str
    nonce: str
    url: str


def pkce() -> tuple[str, str]:
    """Return a (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    return verifier, pkce_challenge(verifier)


class OidcClient:
    """The portal's client at its issuer."""

    def __init__(self, issuer: str, client_id: str, client_secret: str, redirect_uri: str, *,
                 timeout: float, http: requests.Session, scope: str = "openid profile email offline_access",
                 idp_hint: str = "") -> None:
        self.issuer = issuer
        self.scope = scope
        self.idp_hint = idp_hint  # Keycloak's kc_idp_hint: straight on to the brokered issuer's login
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self.http = http
        self._discovery: dict[str, Any] | None = None
        self._fetched = 0.0
        self._guard = threading.Lock()

    def discovery(self) -> dict[str, Any]:
        """Return the issuer's discovery document (cached for an hour)."""
        with self._guard:
            if self._discovery is None or time.monotonic() - self._fetched > DISCOVERY_TTL:
                try:
                    answer = self.http.get(f"{self.issuer}/.well-known/openid-configuration", timeout=self.timeout)
                    answer.raise_for_status()
                    document = answer.json()
                except (requests.RequestException, ValueError) as exc:
                    raise IssuerError(f"discovery failed: {exc}") from exc
                if document.get("issuer") != self.issuer:
                    raise IssuerError("the discovery document names another issuer")
                self._discovery, self._fetched = document, time.monotonic()
            return self._discovery

    def login_request(self, *, lang: str, acr_values: str | None = None, max_age: str | None = None,
                      prompt: str | None = None) -> LoginRequest:
        """Return a new authorization request (its state, PKCE verifier and nonce, and the URL)."""
        verifier, challenge = pkce()
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        params = {"client_id": self.client_id, "redirect_uri": self.redirect_uri, "response_type": "code",
                  "scope": self.scope, "state": state, "nonce": nonce,
                  "code_challenge": challenge, "code_challenge_method": "S256", "ui_locales": lang}
        if self.idp_hint:
            params["kc_idp_hint"] = self.idp_hint
        if acr_values:
            params["acr_values"] = acr_values
        if max_age is not None:
            params["max_age"] = max_age
        if prompt:
            params["prompt"] = prompt
        url = f"{self.discovery()['authorization_endpoint']}?{urlencode(params)}"
        return LoginRequest(state=state, verifier=verifier, nonce=nonce, url=url)

    def exchange(self, code: str, verifier: str) -> Tokens:
        """Exchange an authorization code for tokens."""
        return self._token({"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                            "code_verifier": verifier}, on_refused=IssuerError)

    def refresh(self, refresh_token: str) -> Tokens:
        """Use the refresh token (it is rotated: the new one replaces it)."""
        tokens = self._token({"grant_type": "refresh_token", "refresh_token": refresh_token},
                             on_refused=RefreshFailed)
        return tokens

    def revoke(self, token: str, hint: str = "refresh_token") -> None:
        """Revoke a token at the issuer (best effort: logout goes on whatever it answers)."""
        endpoint = self.discovery().get("revocation_endpoint")
        if not endpoint:
            return
        try:
            self.http.post(endpoint, data={"token": token, "token_type_hint": hint},
                           auth=(self.client_id, self.client_secret), timeout=self.timeout)
        except requests.RequestException:
            pass

    def logout_url(self, post_logout_uri: str) -> str | None:
        """Return the issuer's end-session URL (None when it has none). It names the client by ``client_id``,
        not by ``id_token_hint``: the ID token would pass through the browser (its address bar and history)."""
        endpoint = self.discovery().get("end_session_endpoint")
        if not endpoint:
            return None
        params = {"client_id": self.client_id, "post_logout_redirect_uri": post_logout_uri, "state": "signed-out"}
        return f"{endpoint}?{urlencode(params)}"

    def _token(self, form: dict[str, str], *, on_refused: type[Exception]) -> Tokens:
        try:
            answer = self.http.post(self.discovery()["token_endpoint"], data=form,
                                    auth=(self.client_id, self.client_secret), timeout=self.timeout)
        except requests.RequestException as exc:
            raise IssuerError(f"token endpoint: {exc}") from exc
        if answer.status_code in (400, 401):
            raise on_refused(_error_of(answer))
        if answer.status_code != 200:
            raise IssuerError(f"token endpoint answered {answer.status_code}")
        body = answer.json()
        lifetime = int(body.get("expires_in") or 60)
        return Tokens(access_token=body["access_token"], access_expires_at=utcnow() + timedelta(seconds=lifetime),
                      refresh_token=body.get("refresh_token"), id_token=body.get("id_token"))


def _error_of(answer: requests.Response) -> str:
    try:
        return str(answer.json().get("error") or answer.status_code)
    except ValueError:
        return str(answer.status_code)
