"""Revoking access tokens that were already issued, so that every place that accepts them stops at once.

An access token is a signed JWT: nothing about it can change after it is issued. So a revocation is a fact
about tokens instead: "the token ``jti`` is revoked" or "every token of login ``sid`` (at client ``client_id``,
if given) issued no later than ``revoked_at`` is revoked". Identity stores the fact (``token_revocations``,
for its own ``/userinfo`` and ``/introspect``) and announces it as ``token_revoked`` in the same transaction
(the outbox, relayed within a second); every billing, metering and identity service instance keeps it in
memory (``klients_common.revocations``) and ``Caller.token`` refuses such a token, so the gateway answers 401
on the next call. One path for every cause:

=================  ===================  ==================================================================
cause              what is revoked      where
=================  ===================  ==================================================================
``/revoke``        the token ``jti``;   an access token; a refresh token revokes its family and the login's
                   or ``sid`` + client  tokens at that client (RFC 7009 §2.1)
logout             ``sid``              every client of the login (``/logout``)
password change    ``sid`` of each      every live login of the person (``accounts.end_sessions``)
                   live login
code reuse         ``sid`` + client     what the first exchange issued (RFC 6749 §4.1.2)
refresh reuse      ``sid`` + client     the whole chain (RFC 9700 §4.14.2)
=================  ===================  ==================================================================

A fact is needed only while a token it names can still be alive: for the longest access-token lifetime
(``KEEP_SECONDS``); the retention job deletes older rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from klients_common.outbox import enqueue
from klients_common.revocations import KEEP_SECONDS

from ..models import RefreshToken, TokenRevocation, as_utc, outbox, utcnow


def revoke(session: Session, kind: str, value: str, *, reason: str, client_id: str | None = None,
           at: datetime | None = None) -> None:
    """Revoke the token ``value`` (``kind`` ``jti``) or the tokens of login ``value`` (``sid``; at ``client_id``
    only, if given): stored and announced in the caller's transaction."""
    at = at or utcnow()
    session.add(TokenRevocation(kind=kind, value=value, client_id=client_id, revoked_at=at, reason=reason))
    enqueue(session, outbox, "token_revoked", {"kind": kind, "value": value, "client_id": client_id,
                                               "revoked_at": at.isoformat(), "reason": reason})


def is_revoked(session: Session, claims: Mapping[str, Any]) -> bool:
    """Return whether identity revoked the access token with these (verified) claims."""
    issued = datetime.fromtimestamp(int(claims["iat"]), utcnow().tzinfo)
    client = claims.get("client_id")
    row = session.scalar(select(TokenRevocation.id).where(
        TokenRevocation.revoked_at >= issued,
        or_(and_(TokenRevocation.kind == "jti", TokenRevocation.value == str(claims.get("jti"))),
            and_(TokenRevocation.kind == "sid", TokenRevocation.value == str(claims.get("sid")),
                 or_(TokenRevocation.client_id.is_(None), TokenRevocation.client_id == client)))).limit(1))
    return row is not None


def in_force(session: Session) -> list[dict[str, Any]]:
    """Return the revocations a token could still be affected by (those of the last ``KEEP_SECONDS``)."""
    rows = session.scalars(select(TokenRevocation).where(
        TokenRevocation.revoked_at >= utcnow() - timedelta(seconds=KEEP_SECONDS)))
    return [{"kind": r.kind, "value": r.value, "client_id": r.client_id, "revoked_at": as_utc(r.revoked_at).isoformat()}
            for r in rows]


def revoke_family(session: Session, family_id: str) -> None:
    """Revoke every refresh token of a family (one login at one client)."""
    session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id).values(revoked=True))


def revoke_chain(session: Session, *, family_id: str | None, sid: str, client_id: str, reason: str) -> None:
    """Revoke a login's tokens at one client: its refresh-token family and, at every service, the access tokens
    issued so far (RFC 7009 §2.1; code and refresh-token reuse)."""
    if family_id:
        revoke_family(session, family_id)
    revoke(session, "sid", sid, client_id=client_id, reason=reason)
