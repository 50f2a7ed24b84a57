"""The authorization_code grant's exchange as clients make it, written like the refresh grant: no authlib
request, grant or hook objects, three statements and a commit.

A well-formed exchange (a known client that may use the grant and authenticates as it must, a code, a PKCE
verifier of the right form) is answered here: the code is used up in one ``UPDATE … RETURNING``
(``provider.USE_CODE``: this client's, unused, unexpired; its refresh family set), the redirect URI compared,
the verifier checked against the code's S256 challenge, the login and the person read in one statement, the
grants read and the refresh token stored (``provider``'s own functions), one commit, and the access and ID
tokens signed. The answer is authlib's to the letter: the same token response, the same ID token (authlib's
own ``encode_id_token`` with identity's ``OpenIDConnect``), the same headers.

Every other request, and every exchange refused on the way (an unknown or used code — a reused one revokes
what it issued there —, another redirect URI, a wrong verifier, an ended login, a resource the person has no
grant on), is rolled back and handed to authlib (``provider.server``), which answers it as it always has: the
refusals keep authlib's RFC 6749 errors, word for word, and its reuse detection.
"""

from __future__ import annotations

import hmac
import json
import uuid
from types import SimpleNamespace
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc7636.challenge import CODE_VERIFIER_PATTERN
from flask import Response, request

from klients_common.digests import secret_digest

from ..db import db
from ..models import utcnow
from .claims import Subject
from .clients import Client, authenticate_client
from .provider import USE_CODE, Code, OpenIDConnect, generate_token, store_refresh_token, subject_of_code

ID_TOKENS = OpenIDConnect(require_nonce=False)  # the ID token exactly as authlib's hook makes it
HEADERS = [("Content-Type", "application/json"), ("Cache-Control", "no-store"), ("Pragma", "no-cache")]


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
    authorization = Code(row)
    if "openid" in token["scope"].split():
        token["id_token"] = ID_TOKENS.encode_id_token(token, SimpleNamespace(
            client=client, authorization_code=authorization, user=subject))
    return Response(json.dumps(token), status=200, headers=HEADERS)


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
