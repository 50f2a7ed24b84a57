"""The refresh_token grant (RFC 6749 §6) with rotation and reuse detection, written for its traffic.

Every portal refreshes every few minutes, so this is identity's hottest endpoint. It does in one
statement what matters: the presented token is rotated only if it is live (not rotated, not revoked, not
expired, of this client, its login neither ended nor past its absolute end); a token that was already
rotated revokes its whole family and the access tokens of the chain (reuse detection, RFC 9700 §4.14.2).
Two concurrent uses of one token serialise on its row: the second finds it rotated and revokes the family.
Then the grants are read, the new refresh token stored (expiring with the login at the latest), one commit,
and the access token signed. Scope, resource and token rules are the code grant's own functions
(``pipeline``): the two grants differ only in how they find the login.

Answers follow RFC 6749 §5.2 (``invalid_grant``, ``invalid_client``, ``invalid_scope``, ``invalid_request``)
and RFC 8707 (``invalid_target``), never cached.
"""

from __future__ import annotations

import json

from flask import Response, jsonify, request
from sqlalchemy import bindparam, insert, select, update

from klients_common.digests import secret_digest

from ..db import db
from ..models import LoginSession, RefreshToken, as_utc, utcnow
from .clients import Client, authenticate_client
from .pipeline import (
    InvalidTargetError,
    new_refresh_token,
    refresh_expiry,
    requested_contracts,
    sign_access_token,
    token_grants,
    token_response,
)
from .revocation import revoke_chain

TOKENS = RefreshToken.__table__
SESSIONS = LoginSession.__table__
LOGIN = SESSIONS.alias("login")
# Built once: constructing SQLAlchemy statements per request costs more than running them. The login must
# stand (not ended, not past its absolute end): a refresh never extends a login.
ROTATE = (update(TOKENS).where(
    TOKENS.c.token_hash == bindparam("h"), TOKENS.c.client_id == bindparam("client"), TOKENS.c.rotated_at.is_(None),
    TOKENS.c.revoked.is_(False), TOKENS.c.expires_at > bindparam("now"), SESSIONS.c.sid == TOKENS.c.sid,
    SESSIONS.c.ended_at.is_(None), SESSIONS.c.expires_at > bindparam("now"))
    .values(rotated_at=bindparam("now"))
    .returning(TOKENS.c.family_id, TOKENS.c.person_id, TOKENS.c.sid, TOKENS.c.scope, TOKENS.c.acr, TOKENS.c.amr,
               TOKENS.c.auth_time,
               select(LOGIN.c.expires_at).where(LOGIN.c.sid == TOKENS.c.sid).correlate_except(LOGIN)
               .scalar_subquery().label("session_expires")))  # SQLite returns only the updated table's columns
REUSED = select(TOKENS.c.family_id, TOKENS.c.sid, TOKENS.c.client_id).where(
    TOKENS.c.token_hash == bindparam("h"), TOKENS.c.rotated_at.is_not(None))
STORE = insert(TOKENS)


def _error(code: str, description: str, status: int = 400) -> Response:
    response = jsonify({"error": code, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="klients-identity"'
    return response


def _client() -> Client | Response:
    client = authenticate_client(confidential_only=False)
    if client is None:
        return _error("invalid_client", "unknown client, or its authentication failed", 401)
    if not client.check_grant_type("refresh_token"):
        return _error("unauthorized_client", "this client may not use refresh tokens")
    return client


def grant() -> Response:
    """Answer a refresh_token grant."""
    client = _client()
    if isinstance(client, Response):
        return client
    presented = request.form.get("refresh_token", "")
    if not presented:
        return _error("invalid_request", "refresh_token is required")
    resources = request.form.getlist("resource")
    try:
        requested_contracts(resources)  # a malformed request must not use up the token
    except InvalidTargetError as exc:
        return _error("invalid_target", exc.description)
    session, now = db(), utcnow()
    presented_hash = secret_digest(presented)
    rotated = session.execute(ROTATE, {"h": presented_hash, "client": client.get_client_id(), "now": now}).first()
    if rotated is None:
        reused = session.execute(REUSED, {"h": presented_hash}).first()
        if reused is not None and reused.client_id == client.get_client_id():
            # Someone replayed a used token: end the whole chain, and the access tokens it issued.
            revoke_chain(session, family_id=reused.family_id, sid=reused.sid, client_id=reused.client_id,
                         reason="refresh_reuse")
        session.commit()
        return _error("invalid_grant", "the refresh token is not valid")
    scope = request.form.get("scope")
    if scope is not None and not set(scope.split()) <= set(rotated.scope.split()):
        session.rollback()
        return _error("invalid_scope", "a refresh may only narrow the scope")
    scope = client.get_allowed_scope(scope if scope is not None else rotated.scope)
    amr = json.loads(rotated.amr) if isinstance(rotated.amr, str) else list(rotated.amr)
    try:
        grants = token_grants(session, rotated.person_id, resources)
    except InvalidTargetError as exc:
        session.rollback()
        return _error("invalid_target", exc.description)
    new_token = new_refresh_token()
    session.execute(STORE, {
        "token_hash": secret_digest(new_token), "family_id": rotated.family_id, "client_id": client.get_client_id(),
        "person_id": rotated.person_id, "sid": rotated.sid, "scope": rotated.scope, "acr": rotated.acr, "amr": amr,
        "auth_time": rotated.auth_time, "issued_at": now,
        "expires_at": refresh_expiry(now, as_utc(rotated.session_expires)), "revoked": False,
        "rotated_at": None})
    session.commit()  # the row lock ends here; signing happens outside it
    access = sign_access_token(
        session, client=client, person_id=rotated.person_id, sid=rotated.sid, acr=rotated.acr,
        amr=amr, auth_time=as_utc(rotated.auth_time), scope=scope, grants=grants)
    response = jsonify(token_response(access, scope, new_token))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
