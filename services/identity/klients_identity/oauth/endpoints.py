"""OpenID Connect endpoints: discovery, JWKS, authorize, token, userinfo, revocation, introspection, logout."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError
from authlib.oidc.core.errors import LoginRequiredError, RequestNotSupportedError, RequestURINotSupportedError
from flask import Blueprint, Response, current_app, jsonify, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from joserfc import jwt
from joserfc.errors import JoseError
from keycloak.exceptions import KeycloakError
from requests.exceptions import RequestException
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from klients_common.assurance import LOA_ORDER
from klients_common.auth import PERSON_SCOPES, InvalidToken
from klients_common.digests import secret_digest

from .. import pages
from ..db import db
from ..limits import authorize_limit, limiter, token_limit
from ..models import LoginSession, OAuthClient, Person, RefreshToken, as_utc, utcnow
from . import backchannel, exchange, keycloak_portal, keys, refresh
from . import errors as oauth_errors  # noqa: F401 - authlib errors safe for any input
from . import revocation as token_revocation
from .claims import Subject, user_info
from .clients import authenticate_client, query_client
from .provider import server
from .revocation import revoke_chain, revoke_family

bp = Blueprint("oidc", __name__)
SCOPES = list(PERSON_SCOPES)  # what a person's token may carry (grants: for Keycloak brokering); never a service scope


JSON_ENDPOINTS = frozenset({"/token", "/revoke", "/introspect", "/userinfo"})


@bp.before_app_request
def refuse_nul_characters() -> ResponseReturnValue | None:
    """Refuse (400) any request carrying a NUL character in its path, query, form or Basic credentials, in every
    part of identity: no text identity handles holds one, and PostgreSQL refuses it (a lookup would otherwise
    fail with a 500)."""
    values = list(request.values.items(multi=True)) + list((request.view_args or {}).items())
    if request.authorization is not None:
        values.append((request.authorization.username or "", request.authorization.password or ""))
    if not any("\x00" in str(key) or "\x00" in str(value) for key, value in values):
        return None
    if request.path in JSON_ENDPOINTS:
        return jsonify({"error": "invalid_request", "error_description": "NUL characters are not allowed"}), 400
    return pages.problem_page(400, "bad_request", "NUL characters are not allowed.")


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
        "id_token_signing_alg_values_supported": list(keys.ALGORITHMS),
        "acr_values_supported": list(LOA_ORDER),
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["lv", "en"],
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
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


def pending_key(query: str) -> str:
    """Return one text naming an authorization request by its query string's parameters (in any order): a
    fresh login is bound to the request that sent the person to log in."""
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def _satisfies(login: LoginSession, args: Any, *, fresh: bool) -> bool:
    """Return whether an existing login meets the request's prompt, max_age and acr_values. ``fresh``: the
    person has just logged in because of this very request, which the new login therefore satisfies."""
    if fresh:
        return True
    if "login" in (args.get("prompt") or "").split():
        return False
    max_age = args.get("max_age")
    if max_age is not None:
        if not (max_age.isascii() and max_age.isdigit()) or \
                time.time() - as_utc(login.auth_time).timestamp() > int(max_age):
            return False
    wanted = [LOA_ORDER[v] for v in (args.get("acr_values") or "").split() if v in LOA_ORDER]
    return not wanted or LOA_ORDER.get(login.acr, 0) >= min(wanted)


def _with_iss(location: str) -> str:
    """Add ``iss`` (RFC 9207) to an authorization response's redirect."""
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    query.append(("iss", current_app.config["SETTINGS"].issuer))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _registered_redirect(values: Any) -> str | None:
    """Return the request's redirect URI if its client exists and registered it exactly, else None."""
    client = query_client(values.get("client_id") or "")
    wanted = values.get("redirect_uri") or ""
    return wanted if client is not None and wanted and client.check_redirect_uri(wanted) else None


def _error_response(error: OAuth2Error, values: Any) -> ResponseReturnValue:
    """Answer an authorization request with an error: to the client's registered redirect URI (with
    ``state`` and ``iss``) when the client and that URI are known, else on a page here, so an unregistered
    redirect URI is never followed."""
    if not error.redirect_uri:
        # Errors found before (or without) authlib's own check of the redirect URI go back to the client
        # only when the URI is registered.
        error.redirect_uri = _registered_redirect(values)
    if error.redirect_uri:
        params = {"error": error.error}
        if error.description:
            params["error_description"] = error.description
        state = getattr(error, "state", None) or values.get("state")
        if state:
            params["state"] = state
        separator = "&" if "?" in error.redirect_uri else "?"
        return redirect(_with_iss(f"{error.redirect_uri}{separator}{urlencode(params)}"),
                        code=303 if request.method == "POST" else 302)
    return pages.problem_page(400, "bad_request", error.description or error.error)


def access_denied(pending: str) -> ResponseReturnValue:
    """Tell the client of a parked authorization request that the person did not log in (cancelled,
    refused in their app, or has nothing to log in to): ``error=access_denied`` with its ``state``."""
    values = MultiDict(parse_qsl(pending, keep_blank_values=True))
    return _error_response(AccessDeniedError("The person did not log in."), values)


def _request_object_refused(values: Any) -> OAuth2Error | None:
    """Request objects are not supported (discovery says so): refuse them rather than ignore them."""
    if "request" in values:
        return RequestNotSupportedError("Request objects are not supported: send the parameters themselves.")
    if "request_uri" in values:
        return RequestURINotSupportedError("request_uri is not supported: send the parameters themselves.")
    return None


@bp.route("/authorize", methods=["GET", "POST"])
@limiter.limit(authorize_limit)
def authorize() -> ResponseReturnValue:
    """The authorization endpoint: code flow, PKCE S256, exact redirect URIs, RFC 9207 ``iss``. A POST
    (OIDC Core 3.1.2.1, form-serialised) continues as the same request by GET: the browser then sends the
    session cookie (``SameSite=Lax``) even when the form came from the client's site."""
    if request.method == "POST":
        return redirect(f"{url_for('oidc.authorize')}?{urlencode(list(request.values.items(multi=True)))}", 303)
    values = request.args
    fresh_for = session.pop("fresh_for", None)
    refused = _request_object_refused(values)
    if refused is not None:
        return _error_response(refused, values)
    login = current_login()
    fresh = fresh_for is not None and fresh_for == pending_key(request.query_string.decode("utf-8", "replace"))
    satisfied = login is not None and _satisfies(login, values, fresh=fresh)
    subject = _subject(login) if satisfied and login is not None else None
    try:
        grant = server.get_consent_grant(end_user=subject)
    except OAuth2Error as error:
        return _error_response(error, values)
    if subject is None:
        if "none" in (values.get("prompt") or "").split():
            return _error_response(_login_required(grant), values)
        session["pending_authorize"] = request.query_string.decode("utf-8", "replace")
        wanted = values.get("acr_values", "")
        return redirect(url_for("login.choose", lang=pages.lang_of(values.get("ui_locales")),
                                strong="1" if "substantial" in wanted or "high" in wanted else None,
                                hint=values.get("login_hint")))
    response = server.create_authorization_response(grant=grant, grant_user=subject)
    if response.status_code in (301, 302, 303) and response.location:
        response.location = _with_iss(response.location)
    return response


def _login_required(grant: Any) -> OAuth2Error:
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
    grant_type = request.form.get("grant_type")
    if grant_type == "refresh_token":
        return refresh.grant()
    if grant_type == "authorization_code":
        answered = exchange.grant()  # the common case without authlib's objects; None: authlib answers
        if answered is not None:
            return answered
    response: Response = server.create_token_response()
    if response.status_code == 200:
        db().commit()  # one transaction: the code used up, the refresh token stored
    else:
        db().rollback()  # refused after the code was found (redirect URI, PKCE, login): the code stays unused
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
    row = db().get(RefreshToken, secret_digest(value)) if value else None
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
    row = db().get(RefreshToken, secret_digest(value))
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
        end_login(login)
        db().commit()
    session.clear()
    target = values.get("post_logout_redirect_uri")
    client_id = values.get("client_id") or _client_of_id_token(values.get("id_token_hint"))
    client = db().get(OAuthClient, client_id) if client_id else None
    if target and client is not None and target in (client.post_logout_redirect_uris or []):
        state = values.get("state")
        return redirect(f"{target}?{urlencode({'state': state})}" if state else target)
    return pages.render("logged_out.html", 200)


def end_login(login: LoginSession) -> None:
    """End a login: no more tokens from it, its refresh chains revoked, its access tokens refused everywhere
    within a second (``revocation``); in the caller's transaction."""
    login.ended_at = utcnow()
    for family in set(db().scalars(select(RefreshToken.family_id).where(RefreshToken.sid == login.sid))):
        revoke_family(db(), family)
    token_revocation.revoke(db(), "sid", login.sid, reason="logout", at=login.ended_at)


@bp.post("/backchannel-logout/portal")
def portal_backchannel_logout() -> ResponseReturnValue:
    """Keycloak's portal realm ends a session (the person signs out, an administrator signs them out or
    disables them and signs them out in the console): end every live login of that person here (OIDC
    Back-Channel Logout 1.0; see ``backchannel``). Keycloak's session ids are its own, so the person
    (the logout token's ``sub``, a Keycloak user linked to identity) is what maps to identity's logins."""
    settings = current_app.config["SETTINGS"]
    logout = backchannel.receive("klients_portal_logout", lambda: backchannel.LogoutTokenVerifier(
        f"{settings.keycloak_url}/realms/{settings.portal_realm}", keycloak_portal.PORTAL_CLIENTS,
        replay_scope="logout:portal"))
    if isinstance(logout, Response):
        return logout
    try:
        if "klients_portal_admin" not in current_app.extensions:
            current_app.extensions["klients_portal_admin"] = keycloak_portal.admin_client(
                settings.keycloak_url, settings.portal_realm, settings.keycloak_sync_secret)
        person = keycloak_portal.person_of_user(current_app.extensions["klients_portal_admin"], logout.sub) \
            if logout.sub else None
    except (KeycloakError, RequestException):
        db().rollback()  # the jti is not kept: the same token may be sent again
        return backchannel.answer(400, "the Keycloak user could not be looked up")
    if person is not None:
        live = select(LoginSession).where(LoginSession.person_id == person, LoginSession.ended_at.is_(None),
                                          LoginSession.expires_at > utcnow()).with_for_update()
        for login in db().scalars(live):
            end_login(login)
    db().commit()
    return backchannel.answer(200)


def _client_of_id_token(hint: str | None) -> str | None:
    if not hint:
        return None
    try:
        claims = jwt.decode(hint, keys.key_set(db()), algorithms=list(keys.ALGORITHMS)).claims
    except (JoseError, ValueError):
        return None
    aud = claims.get("aud")
    return aud[0] if isinstance(aud, list) and aud else aud if isinstance(aud, str) else None
