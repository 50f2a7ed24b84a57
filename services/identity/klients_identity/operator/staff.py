"""Operators sign in through the Keycloak staff realm: code flow with PKCE S256 and a confidential client; the
access token is verified like any other (audience ``klients-operator-pages``, realm role ``operator``). The
staff session is re-checked at Keycloak before every action and ended by Keycloak's back-channel logout.
Every sign-in and session end is audited as ``operator:<username>``."""

from __future__ import annotations

import base64
import json
import secrets
import time
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from klients_common import constant_time
from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from klients_common.digests import pkce_challenge

from .. import pages
from ..access.accounts import audit
from ..db import db
from ..models import BrowserSession
from ..oauth import backchannel
from .texts import say

bp = Blueprint("operator", __name__, url_prefix="/operator")  # the staff sign-in and the application pages
bp.add_app_template_global(say, "say")
CLIENT_ID = "klients-operator-pages"
SESSION_TTL = 8 * 3600
F = TypeVar("F")


def _realm() -> str:
    return str(current_app.config["SETTINGS"].staff_issuer)


def _verifier() -> TokenVerifier:
    if "klients_staff_verifier" not in current_app.extensions:
        issuer = _realm()
        current_app.extensions["klients_staff_verifier"] = TokenVerifier([TrustedIssuer(
            issuer=issuer, jwks_uri=f"{issuer}/protocol/openid-connect/certs", audience=CLIENT_ID,
            token_types=("JWT",), client_id_claims=("azp",), payload_types=("Bearer",))])
    verifier: TokenVerifier = current_app.extensions["klients_staff_verifier"]
    return verifier


def current_operator() -> dict[str, Any] | None:
    """Return the signed-in operator of this browser (username, name, roles), if their session stands."""
    operator = session.get("operator")
    if not operator or operator.get("expires", 0) < time.time():
        return None
    return dict(operator)


def operator_required(view: F) -> F:
    """Let only a signed-in operator (realm role ``operator``) through; others go to sign in or get 403.

    A form post (every action: record, approve, reject, revoke) also needs the staff session to stand at
    Keycloak: re-checked with a refresh when the last check is older than ``STAFF_RECHECK_SECONDS``, so a
    disabled or signed-out operator cannot act even if Keycloak's logout token never arrived."""

    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        operator = current_operator()
        texts = pages.TEXT[pages.current_lang()]
        if operator is None and request.method == "POST":
            return pages.problem_page(401, "op_title", texts["op_session_expired"])
        if operator is None:
            return redirect(url_for("operator.login", next=request.full_path if request.method == "GET" else None))
        if request.method == "POST":
            operator = _recheck(operator)
            if operator is None:
                return pages.problem_page(401, "op_title", texts["op_session_expired"])
        if "operator" not in operator["roles"]:
            return pages.problem_page(403, "op_title", texts["op_no_role"])
        return view(*args, **kwargs)  # type: ignore[operator]

    return wrapper  # type: ignore[return-value]


def _recheck(operator: dict[str, Any]) -> dict[str, Any] | None:
    """Return the operator with roles as Keycloak has them now, or None (and end the session here) when
    Keycloak no longer stands behind the staff session (signed out, disabled, session expired)."""
    settings = current_app.config["SETTINGS"]
    if time.time() - float(operator.get("checked_at", 0)) < settings.staff_recheck_seconds:
        return operator
    try:
        answer = requests.post(f"{_realm()}/protocol/openid-connect/token", data={
            "grant_type": "refresh_token", "refresh_token": operator.get("refresh_token", "")},
            auth=(CLIENT_ID, settings.staff_client_secret), timeout=10)
        token = _verifier().verify(answer.json()["access_token"]) if answer.status_code == 200 else None
    except (requests.RequestException, KeyError, ValueError, InvalidToken):
        token = None  # Keycloak cannot confirm the session: no action on its word from earlier
    if token is None or str(token.subject) != operator.get("sub", token.subject):
        session.pop("operator", None)
        audit(db(), actor=f"operator:{operator.get('username')}", action="operator_session_ended", publish=False,
              reason="staff session no longer valid at Keycloak")
        db().commit()
        return None
    operator.update({"roles": sorted(token.roles() & {"operator", "supervisor"}), "checked_at": time.time(),
                     "refresh_token": answer.json().get("refresh_token", operator.get("refresh_token", ""))})
    session["operator"] = operator
    return operator


def end_operator_sessions(logout: backchannel.Logout) -> int:
    """End identity's operator sessions of a Keycloak login (``sid``), or of every login of the staff user
    (``sub`` alone); return how many were ended."""
    operator = BrowserSession.data["operator"]
    if logout.sid is not None:
        condition = operator["sid"].as_string() == logout.sid
        if logout.sub is not None:
            condition = condition & (operator["sub"].as_string() == logout.sub)
    else:
        condition = operator["sub"].as_string() == logout.sub
    ended = 0
    for row in db().scalars(select(BrowserSession).where(condition).with_for_update()):
        data = dict(row.data)
        gone = data.pop("operator", {})
        row.data = data
        ended += 1
        audit(db(), actor=f"operator:{gone.get('username')}", action="operator_session_ended", publish=False,
              reason="signed out at Keycloak")
    return ended


@bp.post("/backchannel-logout")
def backchannel_logout() -> ResponseReturnValue:
    """Keycloak's staff realm ends a login: end the operator sessions it opened here (OIDC Back-Channel
    Logout 1.0; see ``backchannel``)."""
    logout = backchannel.receive("klients_staff_logout", lambda: backchannel.LogoutTokenVerifier(
        _realm(), CLIENT_ID, replay_scope="logout:staff"))
    if isinstance(logout, Response):
        return logout
    end_operator_sessions(logout)
    db().commit()
    return backchannel.answer(200)


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Send the operator to the staff realm (code flow, PKCE S256, state and nonce)."""
    verifier = secrets.token_urlsafe(48)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    next_page = request.args.get("next", "")
    session["operator_login"] = {"state": state, "nonce": nonce, "verifier": verifier,
                                 "next": next_page if next_page.startswith("/operator") else ""}
    challenge = pkce_challenge(verifier)
    return redirect(f"{_realm()}/protocol/openid-connect/auth?" + urlencode({
        "client_id": CLIENT_ID, "response_type": "code", "scope": "openid",
        "redirect_uri": url_for("operator.callback", _external=True), "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256", "ui_locales": pages.current_lang()}))


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    """Exchange the code for the operator's tokens, verify the access token, open the staff session."""
    attempt = session.pop("operator_login", None)
    texts = pages.TEXT[pages.current_lang()]
    if not attempt or not constant_time.equal(attempt["state"], request.args.get("state", "")) or \
            not request.args.get("code"):
        return pages.problem_page(400, "op_title", texts["op_session_expired"])
    settings = current_app.config["SETTINGS"]
    try:
        answer = requests.post(f"{_realm()}/protocol/openid-connect/token", data={
            "grant_type": "authorization_code", "code": request.args["code"], "code_verifier": attempt["verifier"],
            "redirect_uri": url_for("operator.callback", _external=True)},
            auth=(CLIENT_ID, settings.staff_client_secret), timeout=10)
        answer.raise_for_status()
        token = _verifier().verify(answer.json()["access_token"])
    except (requests.RequestException, KeyError, ValueError, InvalidToken):
        return pages.problem_page(502, "op_title", texts["op_session_expired"])
    username = str(token.claims.get("preferred_username") or token.subject)
    sid = token.claims.get("sid") or _id_token_claims(answer.json().get("id_token", "")).get("sid")
    name = str(token.claims.get("name") or username)
    lang, csrf = session.get("lang", "lv"), session.get("csrf")
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session.update({"lang": lang, "operator": {
        "username": username, "name": name, "roles": sorted(token.roles() & {"operator", "supervisor"}),
        "expires": time.time() + SESSION_TTL, "id_token": answer.json().get("id_token", ""),
        "sub": token.subject, "sid": sid, "refresh_token": answer.json().get("refresh_token", ""),
        "checked_at": time.time()}})
    if csrf:
        session["csrf"] = csrf
    audit(db(), actor=f"operator:{username}", action="operator_signed_in")
    db().commit()
    return redirect(attempt["next"] or url_for("operator.home"))


def _id_token_claims(id_token: str) -> dict[str, Any]:
    """Return the claims of the ID token Keycloak just handed us on the back channel (TLS to the token
    endpoint with our client secret: OpenID Connect Core 3.1.3.7 lets that stand for its signature)."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the staff session here and at Keycloak."""
    pages.check_csrf()
    operator = session.pop("operator", None) or {}
    return redirect(f"{_realm()}/protocol/openid-connect/logout?" + urlencode({
        "client_id": CLIENT_ID, "id_token_hint": operator.get("id_token", ""),
        "post_logout_redirect_uri": url_for("operator.home", _external=True)}))
