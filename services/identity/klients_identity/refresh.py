"""The refresh_token grant (RFC 6749 §6) with rotation and reuse detection, written for its traffic.

Every portal refreshes every few minutes, so this is identity's hottest endpoint. It does in one
statement what matters: the presented token is rotated only if it is live (not rotated, not revoked, not
expired, of this client, its login not ended); a token that was already rotated revokes its whole family
(reuse detection, RFC 9700 §4.14.2). Two concurrent uses of one token serialise on its row: the second
finds it rotated and revokes the family. Then the grants are read, the new refresh token stored, one
commit, and the access token signed.

Answers follow RFC 6749 §5.2 (``invalid_grant``, ``invalid_client``, ``invalid_scope``, ``invalid_request``)
and RFC 8707 (``invalid_target``), never cached.
"""

from __future__ import annotations

import json
import uuid

from flask import Response, current_app, jsonify, request
from sqlalchemy import bindparam, insert, select, update

from . import db
from .models import LoginSession, RefreshToken, utcnow
from .oauth2 import (
    REFRESH_TTL,
    Client,
    InvalidTargetError,
    authenticate_client,
    digest,
    live_grants,
    requested_contracts,
    revoke_family,
)
from .tokens import issue_access_token

TOKENS = RefreshToken.__table__
SESSIONS = LoginSession.__table__
# Built once: constructing SQLAlchemy statements per request costs more than running them.
ROTATE = (update(TOKENS).where(
    TOKENS.c.token_hash == bindparam("h"), TOKENS.c.client_id == bindparam("client"), TOKENS.c.rotated_at.is_(None),
    TOKENS.c.revoked.is_(False), TOKENS.c.expires_at > bindparam("now"), SESSIONS.c.sid == TOKENS.c.sid,
    SESSIONS.c.ended_at.is_(None))
    .values(rotated_at=bindparam("now"))
    .returning(TOKENS.c.family_id, TOKENS.c.person_id, TOKENS.c.sid, TOKENS.c.scope, TOKENS.c.acr, TOKENS.c.amr,
               TOKENS.c.auth_time))
REUSED = select(TOKENS.c.family_id).where(TOKENS.c.token_hash == bindparam("h"), TOKENS.c.rotated_at.is_not(None))
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
    try:
        wanted = requested_contracts(request.form.getlist("resource"))
    except InvalidTargetError as exc:
        return _error("invalid_target", exc.description)
    session, now = db(), utcnow()
    rotated = session.execute(ROTATE, {"h": digest(presented), "client": client.get_client_id(), "now": now}).first()
    if rotated is None:
        reused = session.scalar(REUSED, {"h": digest(presented)})
        if reused is not None:
            revoke_family(session, reused)  # someone replayed a used token: end the whole chain
        session.commit()
        return _error("invalid_grant", "the refresh token is not valid")
    granted = rotated.scope.split()
    scope = request.form.get("scope")
    if scope is not None and not set(scope.split()) <= set(granted):
        session.rollback()
        return _error("invalid_scope", "a refresh may only narrow the scope")
    scope = scope if scope is not None else rotated.scope
    grants = live_grants(session, rotated.person_id)
    partial = False
    if wanted is not None:
        held = {g.contract for g in grants}
        if not wanted <= held:
            session.rollback()
            return _error("invalid_target", "a requested resource is not a contract you have access to")
        partial = len(wanted) < len(held)
        grants = [g for g in grants if g.contract in wanted]
    new_token = str(uuid.uuid4()) + uuid.uuid4().hex
    amr = json.loads(rotated.amr) if isinstance(rotated.amr, str) else list(rotated.amr)
    session.execute(STORE, {
        "token_hash": digest(new_token), "family_id": rotated.family_id, "client_id": client.get_client_id(),
        "person_id": rotated.person_id, "sid": rotated.sid, "scope": rotated.scope, "acr": rotated.acr, "amr": amr,
        "auth_time": rotated.auth_time, "issued_at": now, "expires_at": now + REFRESH_TTL, "revoked": False,
        "rotated_at": None})
    session.commit()
    settings = current_app.config["SETTINGS"]
    auth_time = rotated.auth_time if rotated.auth_time.tzinfo else rotated.auth_time.replace(tzinfo=now.tzinfo)
    access = issue_access_token(
        session, issuer=settings.issuer, audience=settings.api_audience, subject=rotated.person_id,
        client_id=client.get_client_id(), grants=grants, acr=rotated.acr, amr=amr, scope=scope,
        auth_time=int(auth_time.timestamp()), sid=rotated.sid, ttl=settings.access_token_ttl, partial=partial)
    response = jsonify({"access_token": access, "token_type": "Bearer", "expires_in": settings.access_token_ttl,
                        "refresh_token": new_token, "scope": scope})
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
