"""The authorization_code grant's exchange as clients make it, written like the refresh grant: no authlib
request, grant or hook objects.

A well-formed exchange (a known client that may use the grant and authenticates as authlib would accept for
certain, a code, a PKCE verifier of the right form) is answered here. On PostgreSQL without ``resource`` it is one
statement run as its own transaction (``EXCHANGE_ONCE``): the code is used up only if it is this client's, unused,
unexpired, issued for this redirect URI and for this verifier's S256 challenge, and its login stands; the refresh
token is stored in the code's new family and the person read with their grants. (The refresh token keeps the
code's scope, which the client was allowed when the code was issued; every token is filtered by the client's
scopes when it is issued.) Otherwise (SQLite, or resources asked for) the same checks are a few statements
(``provider.USE_CODE``, the login and person, the grants, the insert) and one commit. Then the access and ID tokens
are signed. The answer is authlib's to the letter: the same token response, the same ID token (authlib's own
``encode_id_token`` with identity's ``OpenIDConnect``), the same headers.

Every other request, and every exchange refused on the way (an unknown, used or expired code, another redirect
URI, a wrong verifier, an ended login, a resource the person has no grant on), changes nothing (or is rolled back)
and is handed to authlib (``provider.server``), which answers it as it always has: its RFC 6749 errors, word for
word, and its reuse detection (a reused code revokes what it issued).
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN
from flask import Response, json, request
from sqlalchemy import bindparam, update

from klients_common.digests import secret_digest

from ..db import db, execute_alone
from ..models import AuthorizationCode, LoginSession, Person, as_utc, utcnow
from .claims import GRANT_COLUMNS, Subject, grants_of
from .clients import Client, authenticate_client
from .pipeline import REFRESH_TTL, new_refresh_token, store_next_refresh_token, with_live_grants
from .provider import (
    USE_CODE,
    Code,
    OpenIDConnect,
    as_list,
    generate_token,
    store_refresh_token,
    subject_of_code,
    token_for,
)

ID_TOKENS = OpenIDConnect(require_nonce=False)  # the ID token exactly as authlib's hook makes it
HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]

CODES, SESSIONS, PERSONS = AuthorizationCode.__table__, LoginSession.__table__, Person.__table__
NOW = bindparam("now", type_=CODES.c.expires_at.type)
# PostgreSQL, an exchange without resources: the whole exchange's database work in one statement, run as its own
# transaction (``execute_alone``). The code is used up only if every check holds: this client's, unused, unexpired,
# issued for this redirect URI and for this verifier's S256 challenge, its login standing; the refresh token is
# stored in the code's new family (expiring with the login at the latest) and the person read with their active
# grants (an outer join: a person without grants still gets a row). No row: nothing changed, authlib answers.
_USED = (update(CODES).where(
    CODES.c.code_hash == bindparam("h"), CODES.c.client_id == bindparam("client"), CODES.c.used_at.is_(None),
    CODES.c.expires_at > NOW, CODES.c.redirect_uri == bindparam("uri"),
    CODES.c.code_challenge_method == "S256", CODES.c.code_challenge == bindparam("challenge"),
    SESSIONS.c.sid == CODES.c.sid, SESSIONS.c.ended_at.is_(None), SESSIONS.c.expires_at > NOW,
    PERSONS.c.id == SESSIONS.c.person_id)
    .values(used_at=NOW, family_id=bindparam("family"))
    .returning(CODES.c.sid, CODES.c.redirect_uri, CODES.c.scope, CODES.c.nonce, CODES.c.code_challenge,
               CODES.c.code_challenge_method, CODES.c.acr, CODES.c.amr, CODES.c.auth_time, CODES.c.family_id,
               SESSIONS.c.person_id, SESSIONS.c.expires_at.label("session_expires"), PERSONS.c.id,
               PERSONS.c.given_name, PERSONS.c.family_name, PERSONS.c.language, PERSONS.c.email)
    .cte("used"))
_STORED = store_next_refresh_token(_USED, "refresh_hash", "stored")
_READ = with_live_grants(_USED)
EXCHANGE_ONCE = {True: _READ.add_cte(_STORED), False: _READ}  # with a refresh token, or for a client without


def _client() -> Client | None:
    """Return the client if it authenticates the way authlib would accept without a doubt: a confidential client
    with its secret (HTTP Basic, or both form fields), a public one with ``client_id`` only; else None."""
    form, auth = request.form, request.authorization
    if auth is None and not form.get("client_id"):
        return None
    client = authenticate_client(confidential_only=False)
    if client is None or not client.check_grant_type("authorization_code"):
        return None
    if not client.confidential and (auth is not None or "client_secret" in form):
        return None  # a public client showing a secret: authlib's methods decide
    return client


def grant() -> Response | None:
    """Answer a well-formed code exchange, or return None (nothing changed) for authlib to answer."""
    client = _client()
    form = request.form
    code, verifier = form.get("code"), form.get("code_verifier")
    if client is None or not code or not verifier or not CODE_VERIFIER_PATTERN.match(verifier):
        return None
    session, now = db(), utcnow()
    if session.get_bind().dialect.name == "postgresql" and not form.getlist("resource"):
        return _exchange_once(client, code, verifier, now)
    row = session.connection().execute(USE_CODE, {"h": secret_digest(code), "client": client.get_client_id(),
                                                  "now": now, "family": str(uuid.uuid4())}).first()
    if row is None:
        return None  # unknown, another client's, expired, or used (authlib's path revokes what it issued)
    try:
        token, subject = _issue(client, row, verifier)
    except (_Refused, OAuth2Error):
        token = None
    if token is None:
        session.rollback()  # the code stays unused: authlib refuses the request with its own words
        return None
    session.commit()
    return _answer(client, row, subject, token)


def _exchange_once(client: Client, code: str, verifier: str, now: datetime) -> Response | None:
    """The exchange in one statement (``EXCHANGE_ONCE``), then the tokens signed."""
    refresh = new_refresh_token() if client.check_grant_type("refresh_token") else None
    rows = execute_alone(db(), EXCHANGE_ONCE[refresh is not None], {
        "h": secret_digest(code), "client": client.get_client_id(), "now": now,
        "uri": request.form.get("redirect_uri"), "challenge": create_s256_code_challenge(verifier),
        "family": str(uuid.uuid4()), "refresh_hash": secret_digest(refresh) if refresh else None,
        "until": now + REFRESH_TTL})
    if not rows:
        return None
    row = rows[0]
    subject = Subject(row.person_id, row.acr, as_list(row.amr), as_utc(row.auth_time), row.sid,
                      family_id=row.family_id, session_expires=as_utc(row.session_expires), loaded_person=row)
    grants = grants_of(r[-len(GRANT_COLUMNS):] for r in rows), False
    return _answer(client, row, subject, token_for(client, subject, row.scope, grants, refresh))


def _answer(client: Client, row: Any, subject: Subject, token: dict[str, Any]) -> Response:
    """The token response, with the ID token as authlib's hook makes it when the scope has ``openid``."""
    if "openid" in token["scope"].split():
        token["id_token"] = ID_TOKENS.encode_id_token(token, SimpleNamespace(
            client=client, authorization_code=Code(row), user=subject))
    return Response(json.dumps(token), status=200, headers=HEADERS)  # as authlib: Flask's JSON, keys sorted


class _Refused(Exception):
    """The exchange is not the common case after all."""


def _issue(client: Client, row: Any, verifier: str) -> tuple[dict[str, Any], Subject]:
    code = Code(row)
    if code.get_redirect_uri() and request.form.get("redirect_uri") != code.get_redirect_uri():
        raise _Refused
    if code.code_challenge_method != "S256" or not hmac.compare_digest(
            create_s256_code_challenge(verifier), code.code_challenge):
        raise _Refused
    subject = subject_of_code(row)
    if subject is None:
        raise _Refused
    token = generate_token("authorization_code", client, subject, code.get_scope(),
                           include_refresh_token=client.check_grant_type("refresh_token"))
    store_refresh_token(token, subject, client)
    return token, subject
