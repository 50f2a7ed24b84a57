"""The refresh_token grant (RFC 6749 §6) with rotation and reuse detection, written for its traffic.

Every portal refreshes every few minutes, so this is identity's hottest endpoint. On PostgreSQL it does in
one statement (``rotate``) what matters: the presented token is rotated only if it is live (not rotated, not
revoked, not expired, of this client, its login neither ended nor past its absolute end), the next refresh token
stored in its family (expiring with the login at the latest) and the person's active grants read; then one
commit, and the access token signed outside the row lock. A token that was already rotated revokes its whole
family and the access tokens of the chain (reuse detection, RFC 9700 §4.14.2). Two concurrent uses of one token
serialise on its row: the second finds it rotated and revokes the family. A request refused after the rotation
(a wider scope, a contract the person has no grant on) is rolled back: the token stays usable.
Scope, resource and token rules are the code grant's own functions
(``pipeline``): the two grants differ only in how they find the login.

Answers follow RFC 6749 §5.2 (``invalid_grant``, ``invalid_client``, ``invalid_scope``, ``invalid_request``)
and RFC 8707 (``invalid_target``), never cached.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import Row, bindparam, insert, literal_column, select, update
from sqlalchemy.orm import Session

from klients_common.digests import secret_digest
from klients_common.grants import Grant as TokenGrant

from ..db import db, execute_alone
from ..models import LoginSession, RefreshToken, as_utc, utcnow
from .claims import GRANT_COLUMNS, grants_of, live_grants
from .clients import Client, authenticate_client
from .pipeline import (
    REFRESH_TTL,
    InvalidTargetError,
    chosen_grants,
    new_refresh_token,
    refresh_expiry,
    requested_contracts,
    sign_access_token,
    store_next_refresh_token,
    token_response,
    with_live_grants,
)
from .revocation import revoke_chain

TOKENS = RefreshToken.__table__
SESSIONS = LoginSession.__table__
NOW = bindparam("now", type_=TOKENS.c.issued_at.type)
# The presented token, rotated if it is live. The login must stand (not ended, not past its absolute end): a
# refresh never extends a login.
LIVE = (TOKENS.c.token_hash == bindparam("h"), TOKENS.c.client_id == bindparam("client"),
        TOKENS.c.rotated_at.is_(None), TOKENS.c.revoked.is_(False), TOKENS.c.expires_at > NOW,
        SESSIONS.c.sid == TOKENS.c.sid, SESSIONS.c.ended_at.is_(None), SESSIONS.c.expires_at > NOW)
ROTATED = (TOKENS.c.family_id, TOKENS.c.person_id, TOKENS.c.sid, TOKENS.c.scope, TOKENS.c.acr, TOKENS.c.amr,
           TOKENS.c.auth_time)
# Statements are built once: constructing SQLAlchemy statements per request costs more than running them.
#
# PostgreSQL: the whole rotation is one statement (one round trip, then the commit): the presented token
# rotated, the next token stored in its family (expiring with the login at the latest), and the person's
# active grants read, joined to the rotated row (an outer join: a person without grants still gets a row).
# A data-modifying CTE runs to completion whether or not the outer query reads it.
_USED = (update(TOKENS).where(*LIVE).values(rotated_at=NOW)
         .returning(*ROTATED, SESSIONS.c.expires_at.label("session_expires")).cte("used"))
ROTATE_ONCE = with_live_grants(_USED).add_cte(store_next_refresh_token(_USED, "next_hash", "next"))
# SQLite has RETURNING (3.35) but no data-modifying CTE: there the rotation is three statements, the rotated row
# (with the login's end), the grants, and the next token. SQLite's RETURNING names only the updated table's
# columns, so the login's end is a subquery, written out: SQLAlchemy renders RETURNING's columns without their
# table there, which turned the correlation into ``sid = sid`` (any login's end).
ROTATE = (update(TOKENS).where(*LIVE).values(rotated_at=NOW)
          .returning(*ROTATED, literal_column(
              "(SELECT login.expires_at FROM login_sessions AS login WHERE login.sid = refresh_tokens.sid)",
              SESSIONS.c.expires_at.type).label("session_expires")))
STORE = insert(TOKENS)
REUSED = select(TOKENS.c.family_id, TOKENS.c.sid, TOKENS.c.client_id).where(
    TOKENS.c.token_hash == bindparam("h"), TOKENS.c.rotated_at.is_not(None))


def rotate(session: Session, *, presented_hash: str, client_id: str, next_hash: str, now: datetime,
           alone: bool = False) -> tuple[Row[Any], list[TokenGrant]] | None:
    """Rotate a live refresh token in the session's transaction: mark it used, store ``next_hash`` as the next of
    its family, and return the used token's row (with ``session_expires``, its login's end) and the person's live
    grants; None (nothing changed) when the token is not live. One statement on PostgreSQL, three on SQLite.

    ``alone``: nothing the caller does after it could refuse the request, so on PostgreSQL the one statement is the
    whole transaction, committed (``execute_alone``: one round trip)."""
    params = {"h": presented_hash, "client": client_id, "now": now, "next_hash": next_hash}
    if session.get_bind().dialect.name == "postgresql":
        params["until"] = now + REFRESH_TTL
        rows = execute_alone(session, ROTATE_ONCE, params) if alone else \
            session.connection().execute(ROTATE_ONCE, params).all()
        if not rows:
            return None
        return rows[0], grants_of(row[-len(GRANT_COLUMNS):] for row in rows)
    rotated = session.connection().execute(ROTATE, params).first()
    if rotated is None:
        return None
    session.connection().execute(STORE, {
        "token_hash": next_hash, "family_id": rotated.family_id, "client_id": client_id,
        "person_id": rotated.person_id, "sid": rotated.sid, "scope": rotated.scope, "acr": rotated.acr,
        "amr": _amr(rotated.amr), "auth_time": rotated.auth_time, "issued_at": now,
        "expires_at": refresh_expiry(now, as_utc(rotated.session_expires)), "revoked": False, "rotated_at": None})
    return rotated, live_grants(session, rotated.person_id)


def _amr(value: Any) -> list[str]:
    return json.loads(value) if isinstance(value, str) else list(value)


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
    new_token = new_refresh_token()
    scope = request.form.get("scope")
    # Without a scope or resources nothing can refuse the request once the token rotated: one round trip.
    rotation = rotate(session, presented_hash=presented_hash, client_id=client.get_client_id(),
                      next_hash=secret_digest(new_token), now=now, alone=scope is None and not resources)
    if rotation is None:
        reused = session.execute(REUSED, {"h": presented_hash}).first()
        if reused is not None and reused.client_id == client.get_client_id():
            # Someone replayed a used token: end the whole chain, and the access tokens it issued.
            revoke_chain(session, family_id=reused.family_id, sid=reused.sid, client_id=reused.client_id,
                         reason="refresh_reuse")
        session.commit()
        return _error("invalid_grant", "the refresh token is not valid")
    rotated, live = rotation
    if scope is not None and not set(scope.split()) <= set(rotated.scope.split()):
        session.rollback()  # the token stays usable, its next one is not stored
        return _error("invalid_scope", "a refresh may only narrow the scope")
    scope = client.get_allowed_scope(scope if scope is not None else rotated.scope)
    try:
        grants = chosen_grants(live, resources)
    except InvalidTargetError as exc:
        session.rollback()
        return _error("invalid_target", exc.description)
    session.commit()  # the row lock ends here; signing happens outside it
    amr = _amr(rotated.amr)
    access = sign_access_token(
        session, client=client, person_id=rotated.person_id, sid=rotated.sid, acr=rotated.acr,
        amr=amr, auth_time=as_utc(rotated.auth_time), scope=scope, grants=grants)
    response = jsonify(token_response(access, scope, new_token))
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
