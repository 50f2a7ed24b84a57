"""OpenID Connect Back-Channel Logout 1.0: a Keycloak realm tells identity that a login ended.

Keycloak posts ``logout_token=<JWT>`` (form-encoded) to the client's ``backchannel_logout_url`` whenever
one of its sessions ends: the person or an operator signs out, an administrator signs the user out in the
console (Sessions, or ``POST /admin/realms/<realm>/users/<id>/logout``), the session expires. Identity
checks the token exactly as the specification's section 2.6 says, and only then ends what that login
opened at identity:

1. the signature, with a key of the realm's JWKS looked up by ``kid`` (``alg`` on the allow-list, never
   ``none`` or an HMAC; ``jku``/``x5u``/``jwk`` headers are never used); an ID or access token
   (``typ`` ``JWT`` with payload ``typ`` other than ``Logout``, or ``at+jwt``) is refused;
2. ``iss`` is exactly the realm's issuer, ``aud`` contains our client id, ``iat`` is present and neither
   in the future nor older than ``MAX_AGE_SECONDS`` (both with ``LEEWAY_SECONDS``), ``exp`` (if present)
   not passed;
3. ``sub`` or ``sid`` is present (both are strings);
4. ``events`` is an object with the member ``http://schemas.openid.net/event/backchannel-logout`` whose
   value is an object;
5. ``nonce`` is absent (so an ID token can never pass as a logout token);
6. ``jti`` was not seen before: kept in ``used_nonces`` until the token could no longer pass step 2
   (one table for every single-use value; the retention job deletes expired rows).

The endpoint answers 200 when the logout was done (or there was nothing to end), 400 with
``{"error": "invalid_request", "error_description": ...}`` when the token is refused, always with
``Cache-Control: no-store`` (section 2.8).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, jsonify, request

from klients_common.auth import ALLOWED_ALGORITHMS, InvalidToken, JwksCache, UnverifiedJws

from ..db import db
from ..nonces import DatabaseNonceStore

EVENT = "http://schemas.openid.net/event/backchannel-logout"
MAX_AGE_SECONDS = 300  # a logout token is sent at once; an older one is a replay
LEEWAY_SECONDS = 30
_HEADER_TYPES = (None, "JWT", "logout+jwt", "application/logout+jwt")


class LogoutTokenRefused(ValueError):
    """The logout token does not meet the specification (the message says which check failed)."""


@dataclass(frozen=True)
class Logout:
    """A verified logout: the realm's session id and/or the user's id in the realm."""

    sid: str | None
    sub: str | None


class LogoutTokenVerifier:
    """Checks logout tokens from one issuer (a Keycloak realm) for one client (or any of several)."""

    def __init__(self, issuer: str, audience: str | tuple[str, ...], *, replay_scope: str,
                 jwks_uri: str | None = None) -> None:
        self.issuer = issuer
        self.audiences = (audience,) if isinstance(audience, str) else audience
        self.replay_scope = replay_scope  # the ``used_nonces.provider`` under which this issuer's jtis are kept
        self.jwks = JwksCache(jwks_uri or f"{issuer}/protocol/openid-connect/certs")

    def verify(self, token: str, *, now: float | None = None) -> Logout:
        """Return the logout the token asks for, or raise LogoutTokenRefused."""
        now = time.time() if now is None else now
        try:
            unverified = UnverifiedJws.parse(token)
        except InvalidToken as exc:
            raise LogoutTokenRefused("malformed token") from exc
        header, claims = unverified.header, unverified.claims
        if claims.get("iss") != self.issuer:
            raise LogoutTokenRefused("untrusted issuer")
        if header.get("alg") not in ALLOWED_ALGORITHMS or header.get("typ") not in _HEADER_TYPES:
            raise LogoutTokenRefused("not a logout token header")
        try:
            unverified.check_signature(self.jwks)
        except InvalidToken as exc:  # critical header, bad key id, unknown key, key set unavailable, bad signature
            raise LogoutTokenRefused(exc.detail) from exc
        return self._check(claims, now)

    def _check(self, claims: dict[str, Any], now: float) -> Logout:
        aud = claims.get("aud")
        if not set(self.audiences) & set([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []):
            raise LogoutTokenRefused("not meant for this client")
        if "typ" in claims and claims["typ"] != "Logout":  # Keycloak's ID and access tokens say ID / Bearer
            raise LogoutTokenRefused("not a logout token")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise LogoutTokenRefused("bad iat")
        if iat > now + LEEWAY_SECONDS or iat < now - MAX_AGE_SECONDS - LEEWAY_SECONDS:
            raise LogoutTokenRefused("iat out of range")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or isinstance(exp, bool)
                                or exp <= now - LEEWAY_SECONDS):
            raise LogoutTokenRefused("token expired")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(EVENT), dict):
            raise LogoutTokenRefused("no back-channel logout event")
        if "nonce" in claims:
            raise LogoutTokenRefused("a logout token has no nonce")
        sid, sub = claims.get("sid"), claims.get("sub")
        if sid is None and sub is None:
            raise LogoutTokenRefused("neither sid nor sub")
        if (sid is not None and (not isinstance(sid, str) or not sid)) or \
                (sub is not None and (not isinstance(sub, str) or not sub)):
            raise LogoutTokenRefused("bad sid or sub")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 128:
            raise LogoutTokenRefused("bad jti")
        if not DatabaseNonceStore().use(self.replay_scope, jti, iat + MAX_AGE_SECONDS + 2 * LEEWAY_SECONDS):
            raise LogoutTokenRefused("jti already used")
        return Logout(sid=sid, sub=sub)


def answer(status: int, description: str | None = None) -> Response:
    """Return the endpoint's answer: 200 empty, or 400 with the error (never cached)."""
    response = jsonify({"error": "invalid_request", "error_description": description}) if status == 400 \
        else Response(status=200)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def received_token() -> str:
    """Return the ``logout_token`` form parameter, or raise LogoutTokenRefused."""
    token = request.form.get("logout_token", "") if request.mimetype == "application/x-www-form-urlencoded" else ""
    if not token:
        raise LogoutTokenRefused("logout_token is missing (form-encoded POST)")
    return token


def receive(extension: str, make_verifier: Callable[[], LogoutTokenVerifier]) -> Logout | Response:
    """Verify the posted logout token with the app's verifier kept under ``extension`` (made on first use);
    return the logout it asks for, or the 400 answer to send (nothing of the request kept)."""
    if extension not in current_app.extensions:
        current_app.extensions[extension] = make_verifier()
    verifier: LogoutTokenVerifier = current_app.extensions[extension]
    try:
        return verifier.verify(received_token())
    except LogoutTokenRefused as exc:
        db().rollback()
        return answer(400, str(exc))
