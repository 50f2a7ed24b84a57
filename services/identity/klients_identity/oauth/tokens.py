"""Minting tokens: RFC 9068 access tokens carrying the grants claim (docs/tokens.md, "Claims")."""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from sqlalchemy.orm import Session

from klients_common.grants import Grant, grants_claim

from . import keys

MAX_GRANTS_IN_TOKEN = 12  # keeps a token under 4 KB with every right on each; as grants.schema.json's maxProperties


def issue_access_token(session: Session, *, issuer: str, audience: str, subject: str, client_id: str,
                       grants: list[Grant], acr: str, amr: list[str], scope: str = "openid",
                       auth_time: int | None = None, sid: str | None = None, ttl: int = 300,
                       now: float | None = None, partial: bool = False, alg: str = keys.DEFAULT_ALG) -> str:
    """Return an access token (``typ: at+jwt``) for ``subject``, signed under ``alg`` (the client's
    ``access_token_signed_response_alg``) with identity's current key of that algorithm; ``partial`` says
    ``grants`` is a chosen subset of the person's grants (a contract-scoped token)."""
    now = int(now if now is not None else time.time())
    complete = len(grants) <= MAX_GRANTS_IN_TOKEN and not partial
    grants = sorted(grants, key=lambda g: g.contract)[:MAX_GRANTS_IN_TOKEN]
    claims: dict[str, Any] = {
        "iss": issuer, "aud": audience, "sub": subject, "client_id": client_id,
        "iat": now, "exp": now + ttl, "jti": str(uuid.uuid4()), "scope": scope,
        "acr": acr, "amr": amr, "auth_time": auth_time or now, "sid": sid or str(uuid.uuid4()),
        "grants": grants_claim(grants),
    }
    if not complete:
        # Tokens stay under 4 KB: a person with more grants (a property manager) gets the first ones and
        # this flag, and asks for contract-scoped tokens (RFC 8707 ``resource``) to reach the others.
        claims["grants_complete"] = False
    key = keys.current(session, alg=alg)
    return jwt.encode({"alg": key.alg, "typ": "at+jwt", "kid": key.kid}, claims, keys.private_jwk(key),
                      algorithms=[key.alg])
