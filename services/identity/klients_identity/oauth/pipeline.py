"""The token pipeline: both grants that issue tokens (authorization_code in ``provider``, refresh_token in
``refresh``) choose the grants (RFC 8707 ``resource``), mint the access token, make the refresh token and bound
its life with these functions, and answer alike."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Error
from flask import current_app
from sqlalchemy.orm import Session

from klients_common.grants import Grant as TokenGrant

from .claims import live_grants
from .clients import Client
from .tokens import MAX_GRANTS_IN_TOKEN, issue_access_token

REFRESH_TTL = timedelta(hours=8)


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
