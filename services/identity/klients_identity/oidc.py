"""OpenID Connect endpoints: discovery, JWKS, authorize, token, userinfo, revocation, introspection, logout."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2 import OAuth2Error
from flask import Blueprint, Response, current_app, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from klients_common.auth import LOA_ORDER, InvalidToken

from . import db, keys, pages, token_revocation
from .limits import limiter, token_limit
from .models import LoginSession, OAuthClient, Person, RefreshToken, as_utc, utcnow
from .oauth2 import Subject, authenticate_client, digest, query_client, revoke_chain, revoke_family, server, user_info

bp = Blueprint("oidc", __name__)
SCOPES = ["openid", "profile", "email", "offline_access", "grants"]  # grants: for Keycloak brokering


@bp.get("/.well-known/openid-configuration")
def discovery() -> ResponseReturnValue:
    """Return the OpenID Provider metadata."""
    issuer = current_app.config["SETTINGS"].issuer
    response = jsonify({
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks.json",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{issuer}/introspect",
        "end_session_endpoint": f"{issuer}/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES,
        "claims_supported": ["sub", "sid", "given_name", "family_name", "name", "locale", "email", "acr", "amr",
                             "auth_time"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "acr_values_supported": list(LOA_ORDER),
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["lv", "en"],
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
    })
    response.cache_control.max_age = 300
    return response


@bp.get("/jwks.json")
def jwks() -> ResponseReturnValue:
    """Return the published signing keys (the current one, the next one, those not yet retired)."""
    response = jsonify(keys.jwks(db()))
    response.cache_control.max_age = 300
    return response


# --- authorize ----------------------------------------------------------------------------------------

def current_login() -> LoginSession | None:
    """Return the browser's live login session at identity, if any."""
    sid = session.get("sid")
    login = db().get(LoginSession, sid) if sid else None
    if login is None or login.ended_at is not None or as_utc(login.expires_at) < utcnow():
        return None
    return login


def _satisfies(login: LoginSession, args: Any) -> bool:
    """Return whether an existing login meets the request's prompt, max_age and acr_values."""
    if session.pop("fresh_login", False):
        return True
    if "login" in (args.get("prompt") or "").split():
        return False
    max_age = args.get("max_age")
    if max_age is not None:
        if not max_age.isdigit() or time.time() - as_utc(login.auth_time).timestamp() > int(max_age):
            return False
    wanted = [LOA_ORDER[v] for v in (args.get("acr_values") or "").split() if v in LOA_ORDER]
    return not wanted or LOA_ORDER.get(login.acr, 0) >= min(wanted)


def _with_iss(location: str) -> str:
    """Add ``iss`` (RFC 9207) to an authorization response's redirect."""
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    query.append(("iss", current_app.config["SETTINGS"].issuer))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _error_response(error: OAuth2Error) -> ResponseReturnValue:
    if not error.redirect_uri:
        # Errors found after the client and its redirect URI were validated (e.g. PKCE) go back to the
        # client; anything else stays here, so an unregistered redirect URI is never followed.
        client = query_client(request.args.get("client_id", ""))
        wanted = request.args.get("redirect_uri", "")
        if client is not None and wanted and client.check_redirect_uri(wanted):
            error.redirect_uri = wanted
            error.state = request.args.get("state")
    if error.redirect_uri:
        params = {"error": error.error}
        if error.description:
            params["error_description"] = error.description
        if getattr(error, "state", None):
            params["state"] = error.state
        separator = "&" if "?" in error.redirect_uri else "?"
        return redirect(_with_iss(f"{error.redirect_uri}{separator}{urlencode(params)}"))
    return pages.problem_page(400, "bad_request", error.description or error.error)


@bp.get("/authorize")
def authorize() -> ResponseReturnValue:
    """The authorization endpoint: code flow, PKCE S256, exact redirect URIs, RFC 9207 ``iss``."""
    login = current_login()
    satisfied = login is not None and _satisfies(login, request.args)
    subject = _subject(login) if satisfied and login is not None else None
    try:
        grant = server.get_consent_grant(end_user=subject)
    except OAuth2Error as error:
        return _error_response(error)
    if subject is None:
        if "none" in (request.args.get("prompt") or "").split():
            return _error_response(_login_required(grant))
        session["pending_authorize"] = request.query_string.decode()
        wanted = request.args.get("acr_values", "")
        return redirect(url_for("login.choose", lang=pages.lang_of(request.args.get("ui_locales")),
                                strong="1" if "substantial" in wanted or "high" in wanted else None,
                                hint=request.args.get("login_hint")))
    response = server.create_authorization_response(grant=grant, grant_user=subject)
    if response.status_code in (301, 302, 303) and response.location:
        response.location = _with_iss(response.location)
    return response


def _login_required(grant: Any) -> OAuth2Error:
    from authlib.oidc.core.errors import LoginRequiredError

    error = LoginRequiredError(redirect_uri=grant.redirect_uri)
    error.state = grant.request.payload.state
    return error


def _subject(login: LoginSession) -> Subject:
    return Subject(login.person_id, login.acr, list(login.amr), as_utc(login.auth_time), login.sid)


# --- token, userinfo, revocation, introspection --------------------------------------------------------

@bp.post("/token")
@limiter.limit(token_limit)
def token() -> ResponseReturnValue:
    """The token endpoint: authorization_code and refresh_token only."""
    if request.form.get("grant_type") == "refresh_token":
        from .refresh import grant

        return grant()
    response: Response = server.create_token_response()
    db().commit()  # one transaction: the code or old refresh token used up, the new refresh token stored
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo() -> ResponseReturnValue:
    """Return claims about the person the access token is for."""
    header = request.headers.get("Authorization", "")
    try:
        token = current_app.extensions["klients_verifier"].verify(header.removeprefix("Bearer ").strip())
    except InvalidToken as exc:
        response = jsonify({"error": "invalid_token", "error_description": exc.detail})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    if token_revocation.is_revoked(db(), token.claims) or "openid" not in token.scopes:
        return jsonify({"error": "invalid_token"}), 401
    person = db().get(Person, token.subject)
    if person is None:
        return jsonify({"error": "invalid_token"}), 401
    return jsonify(dict(user_info(person, " ".join(token.scopes))))


@bp.post("/revoke")
def revoke() -> ResponseReturnValue:
    """RFC 7009: revoke a refresh token (its whole family, and the access tokens of that login at this client)
    or one access token, at identity and at every service within a second. Always 200 for a known client."""
    client = authenticate_client(confidential_only=False)
    if client is None:
        return jsonify({"error": "invalid_client"}), 401
    value = request.form.get("token", "")
    row = db().get(RefreshToken, digest(value)) if value else None
    if row is not None and row.client_id == client.get_client_id():
        revoke_chain(db(), family_id=row.family_id, sid=row.sid, client_id=row.client_id, reason="revoke")
    elif row is None and value:
        try:
            claims = current_app.extensions["klients_verifier"].verify(value).claims
        except InvalidToken:
            claims = None
        if claims and claims.get("client_id") == client.get_client_id() and not token_revocation.is_revoked(
                db(), claims):
            token_revocation.revoke(db(), "jti", str(claims["jti"]), reason="revoke")
    db().commit()
    return Response(status=200)


@bp.post("/introspect")
def introspect() -> ResponseReturnValue:
    """RFC 7662, for confidential clients only."""
    if authenticate_client(confidential_only=True) is None:
        return jsonify({"error": "invalid_client"}), 401
    value = request.form.get("token", "")
    row = db().get(RefreshToken, digest(value))
    if row is not None:
        login = db().get(LoginSession, row.sid)
        live = not row.revoked and row.rotated_at is None and as_utc(row.expires_at) > utcnow() and \
            login is not None and login.ended_at is None and as_utc(login.expires_at) > utcnow()
        return jsonify({"active": live, "token_type": "refresh_token", "client_id": row.client_id,
                        "sub": row.person_id, "scope": row.scope,
                        "exp": int(as_utc(row.expires_at).timestamp())} if live else {"active": False})
    try:
        token = current_app.extensions["klients_verifier"].verify(value)
    except InvalidToken:
        return jsonify({"active": False})
    if token_revocation.is_revoked(db(), token.claims):
        return jsonify({"active": False})
    return jsonify({"active": True, "token_type": "access_token", **token.claims})


# --- logout -------------------------------------------------------------------------------------------

@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    """RP-initiated logout: end the login and its refresh tokens; return to a registered URI if given."""
    values = request.values
    login = current_login()
    if login is not None:
        login.ended_at = utcnow()
        for family in set(db().scalars(select(RefreshToken.family_id).where(RefreshToken.sid == login.sid))):
            revoke_family(db(), family)
        token_revocation.revoke(db(), "sid", login.sid, reason="logout", at=login.ended_at)
        db().commit()
    session.clear()
    target = values.get("post_logout_redirect_uri")
    client_id = values.get("client_id") or _client_of_id_token(values.get("id_token_hint"))
    client = db().get(OAuthClient, client_id) if client_id else None
    if target and client is not None and target in (client.post_logout_redirect_uris or []):
        state = values.get("state")
        return redirect(f"{target}?{urlencode({'state': state})}" if state else target)
    return pages.render("logged_out.html", 200)


def _client_of_id_token(hint: str | None) -> str | None:
    if not hint:
        return None
    from joserfc import jwt
    from joserfc.errors import JoseError

    try:
        claims = jwt.decode(hint, keys.key_set(db())).claims
    except (JoseError, ValueError):
        return None
    aud = claims.get("aud")
    return aud[0] if isinstance(aud, list) and aud else aud if isinstance(aud, str) else None
