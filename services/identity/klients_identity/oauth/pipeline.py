"""The token pipeline: both grants that issue tokens (authorization_code in ``provider``, refresh_token in
``refresh``) choose the grants (RFC 8707 ``resource``), mint the access token, make the refresh token and bound
its life with these functions, and answer alike."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import current_app
from sqlalchemy import CTE, Select, and_, bindparam, false, func, insert, select
from sqlalchemy.orm import Session

from klients_common.grants import Grant as TokenGrant

from ..models import Grant, RefreshToken
from .claims import GRANT_COLUMNS, live_grants
from .clients import Client
from .tokens import MAX_GRANTS_IN_TOKEN, issue_access_token

REFRESH_TTL = timedelta(hours=8)
_TOKENS, _GRANTS = RefreshToken.__table__, Grant.__table__


CONTRACT_RESOURCE = "urn:klients:contract:"


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the requested resource is unknown or not the caller's."""

    error = "invalid_target"


def requested_contracts(resources: list[str]) -> set[str] | None:
    """Return the contracts a token request asks to be scoped to (RFC 8707 ``resource``), or None."""
    if not resources:
        return None
    if len(resources) > MAX_GRANTS_IN_TOKEN or not all(
            r.startswith(CONTRACT_RESOURCE) and 0 < len(r) - len(CONTRACT_RESOURCE) <= 32 for r in resources):
        raise InvalidTargetError(f"resource is {CONTRACT_RESOURCE}<contract>, at most {MAX_GRANTS_IN_TOKEN} of them")
    return {r.removeprefix(CONTRACT_RESOURCE) for r in resources}


def token_grants(session: Session, person_id: str, resources: list[str]) -> tuple[list[TokenGrant], bool]:
    """Return the grants an access token carries: every live one, or only those of the contracts the request
    names (RFC 8707 ``resource``; then whether that is a subset of what the person holds)."""
    return chosen_grants(live_grants(session, person_id), resources)


def chosen_grants(grants: list[TokenGrant], resources: list[str]) -> tuple[list[TokenGrant], bool]:
    """Return, of the person's live ``grants``, those an access token carries (all, or the contracts
    ``resources`` names) and whether that is a subset of what the person holds."""
    wanted = requested_contracts(resources)
    if wanted is None:
        return grants, False
    held = {g.contract for g in grants}
    if not wanted <= held:
        raise InvalidTargetError("a requested resource is not a contract you have access to")
    return [g for g in grants if g.contract in wanted], len(wanted) < len(held)


def sign_access_token(session: Session, *, client: Client, person_id: str, sid: str, acr: str, amr: list[str],
                      auth_time: datetime, scope: str, grants: tuple[list[TokenGrant], bool]) -> str:
    """Return a signed access token for a person's login at ``client`` (under its
    ``access_token_signed_response_alg``), carrying ``grants`` (from ``token_grants``: the grants and whether
    they are a chosen subset)."""
    settings = current_app.config["SETTINGS"]
    return issue_access_token(
        session, issuer=settings.issuer, audience=settings.api_audience, subject=person_id,
        client_id=client.get_client_id(), grants=grants[0], acr=acr, amr=amr, scope=scope,
        auth_time=int(auth_time.timestamp()), sid=sid, ttl=settings.access_token_ttl, partial=grants[1],
        alg=client.access_token_signed_response_alg)


def new_refresh_token() -> str:
    """Return a fresh refresh-token value (244 random bits; stored only as its digest)."""
    return str(uuid.uuid4()) + uuid.uuid4().hex


def refresh_expiry(now: datetime, session_expires: datetime | None) -> datetime:
    """Return when a refresh token made ``now`` expires: ``REFRESH_TTL`` on, never after its login ends."""
    until = now + REFRESH_TTL
    return min(until, session_expires) if session_expires is not None else until


def token_response(access: str, scope: str, refresh: str | None = None) -> dict[str, Any]:
    """Return the token endpoint's answer."""
    token: dict[str, Any] = {"token_type": "Bearer", "access_token": access,
                             "expires_in": current_app.config["SETTINGS"].access_token_ttl, "scope": scope}
    if refresh:
        token["refresh_token"] = refresh
    return token


# Both grants' one-statement paths on PostgreSQL (``exchange`` for the code, ``refresh`` for the rotation): a CTE
# ``used`` that uses up the code or rotates the token and returns the login's ``family_id``, ``person_id``, ``sid``,
# ``scope``, ``acr``, ``amr``, ``auth_time`` and ``session_expires``; these two pieces do the rest alike.
def store_next_refresh_token(used: CTE, token_hash: str, name: str) -> CTE:
    """A CTE that stores the next refresh token of ``used``'s family (its hash the bound parameter ``token_hash``,
    for the client ``client``), issued ``now`` and expiring at ``until`` or with the login, whichever is first."""
    return insert(_TOKENS).from_select(
        ["token_hash", "family_id", "client_id", "person_id", "sid", "scope", "acr", "amr", "auth_time", "issued_at",
         "expires_at", "revoked"],
        select(bindparam(token_hash, type_=_TOKENS.c.token_hash.type), used.c.family_id,
               bindparam("client", type_=_TOKENS.c.client_id.type), used.c.person_id, used.c.sid, used.c.scope,
               used.c.acr, used.c.amr, used.c.auth_time, bindparam("now", type_=_TOKENS.c.issued_at.type),
               func.least(bindparam("until", type_=_TOKENS.c.expires_at.type), used.c.session_expires), false()),
    ).cte(name)


def with_live_grants(used: CTE) -> Select[Any]:
    """``used``'s row joined to the person's active grants (an outer join: a person without grants still gets a
    row); ``claims.grants_of`` reads the grants from each row's last ``GRANT_COLUMNS``."""
    return (select(*used.c, *(_GRANTS.c[c.key] for c in GRANT_COLUMNS))
            .select_from(used.outerjoin(_GRANTS, and_(_GRANTS.c.person_id == used.c.person_id,
                                                      _GRANTS.c.status == "active"))))
