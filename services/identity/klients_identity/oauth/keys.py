"""Signing keys and their rotation.

Rotation never breaks a verifier: a new key is published in the JWKS ``KEY_PUBLISH_AHEAD`` seconds
before it starts signing (verifiers cache the JWKS), and the key it replaces stays published until
every token it signed has expired (``retire_at`` = the new key's start + the access-token lifetime +
a minute of clock skew).
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..models import SigningKey, as_utc, utcnow

SKEW = timedelta(seconds=60)


def rotate(session: Session, *, publish_ahead: int, token_ttl: int, now: datetime | None = None) -> SigningKey:
    """Create the next signing key and schedule the retirement of the ones it replaces."""
    now = now or utcnow()
    active_from = now + timedelta(seconds=publish_ahead)
    key = RSAKey.generate_key(2048, private=True)
    pem = key.as_pem(private=True)
    new = SigningKey(kid=f"k{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}", alg="RS256",
                     private_pem=pem.decode() if isinstance(pem, bytes) else pem,
                     created_at=now, active_from=active_from)
    for old in session.scalars(select(SigningKey).where(SigningKey.retire_at.is_(None))):
        old.retire_at = active_from + timedelta(seconds=token_ttl) + SKEW
    session.add(new)
    session.flush()
    forget_cached()
    return new


def forget_cached() -> None:
    """Look the current key up afresh next time (after keys changed in this process)."""
    _current.clear()


def ensure_key(session: Session, *, token_ttl: int) -> None:
    """Create a first signing key, usable at once, when there is none."""
    if session.scalar(select(SigningKey.kid).limit(1)) is None:
        rotate(session, publish_ahead=0, token_ttl=token_ttl)


def published(session: Session, now: datetime | None = None) -> list[SigningKey]:
    """Return the keys the JWKS publishes: every key not yet retired, future ones included."""
    now = now or utcnow()
    return list(session.scalars(
        select(SigningKey).where(or_(SigningKey.retire_at.is_(None), SigningKey.retire_at > now))
        .order_by(SigningKey.active_from)
    ))


_current: dict[str, tuple[float, SigningKey]] = {}
CURRENT_CACHE_SECONDS = 5.0


def current(session: Session, now: datetime | None = None) -> SigningKey:
    """Return the key that signs now: the newest whose ``active_from`` has passed (looked up at most
    every few seconds per process; a key is published long before it signs)."""
    if now is None:
        cached = _current.get(str(session.get_bind().url))
        if cached and time.monotonic() - cached[0] < CURRENT_CACHE_SECONDS:
            return cached[1]
        key = _current_at(session, utcnow())
        session.expunge(key)
        _current[str(session.get_bind().url)] = (time.monotonic(), key)
        return key
    return _current_at(session, now)


def _current_at(session: Session, now: datetime) -> SigningKey:
    key = next((k for k in reversed(published(session, now)) if as_utc(k.active_from) <= now), None)
    if key is None:
        raise LookupError("no active signing key: run `klients-identity rotate-keys`")
    return key


_imported: dict[str, RSAKey] = {}


def private_jwk(key: SigningKey) -> RSAKey:
    """Return the joserfc private key of ``key``, with its kid (parsed once per process: loading an RSA
    private key checks it, which costs tens of milliseconds)."""
    imported = _imported.get(key.kid)
    if imported is None:
        imported = RSAKey.import_key(key.private_pem, {"kid": key.kid, "alg": key.alg, "use": "sig"})
        _imported[key.kid] = imported
    return imported


def key_set(session: Session, now: datetime | None = None) -> KeySet:
    """Return the published keys (public parts) as a joserfc key set, for verifying locally."""
    return KeySet.import_key_set(jwks(session, now))


def jwks(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Return the public JWKS document."""
    return {"keys": [private_jwk(k).as_dict(private=False) for k in published(session, now)]}
