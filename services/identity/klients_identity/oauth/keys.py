"""Signing keys and their rotation.

Identity signs with the algorithms every verifier accepts (``klients_common.auth.ALLOWED_ALGORITHMS``: RS256,
the default, PS256 and ES256), each with keys of its own: RSA 2048 for RS256 and for PS256, EC P-256 for
ES256; a key signs under one algorithm only, which the JWKS states (``alg``, ``use: sig``, ``kid``). Each
algorithm's keys rotate on their own. A client chooses its algorithms in its metadata (``oauth2.Client``).

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

from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from klients_common.auth import ALLOWED_ALGORITHMS, KEY_TYPES

from ..models import SigningKey, as_utc, utcnow

SKEW = timedelta(seconds=60)
ALGORITHMS = ALLOWED_ALGORITHMS  # what identity signs with (and discovery offers); RS256 first, the default
DEFAULT_ALG = "RS256"


def generate(alg: str) -> RSAKey | ECKey:
    """Return a new private key of the type ``alg`` needs (RSA 2048, or EC on its curve)."""
    kty, curve = KEY_TYPES[alg]
    return ECKey.generate_key(curve, private=True) if kty == "EC" else RSAKey.generate_key(2048, private=True)


def rotate(session: Session, *, publish_ahead: int, token_ttl: int, alg: str = DEFAULT_ALG,
           now: datetime | None = None) -> SigningKey:
    """Create the next signing key for ``alg`` and schedule the retirement of that algorithm's keys it
    replaces (the other algorithms' keys are left alone)."""
    if alg not in ALGORITHMS:
        raise ValueError(f"identity does not sign with {alg}: use one of {', '.join(ALGORITHMS)}")
    now = now or utcnow()
    active_from = now + timedelta(seconds=publish_ahead)
    pem = generate(alg).as_pem(private=True)
    new = SigningKey(kid=f"k{now:%Y%m%d%H%M%S}-{secrets.token_hex(4)}", alg=alg,
                     private_pem=pem.decode() if isinstance(pem, bytes) else pem,
                     created_at=now, active_from=active_from)
    for old in session.scalars(select(SigningKey).where(SigningKey.retire_at.is_(None), SigningKey.alg == alg)):
        old.retire_at = active_from + timedelta(seconds=token_ttl) + SKEW
    session.add(new)
    session.flush()
    forget_cached()
    return new


def forget_cached() -> None:
    """Look the current key up afresh next time (after keys changed in this process)."""
    _current.clear()


def ensure_key(session: Session, *, token_ttl: int) -> None:
    """Create a first signing key, usable at once, for each algorithm that has none (``migrate`` runs this:
    a deployment from before an algorithm was offered gets its key there)."""
    have = set(session.scalars(select(SigningKey.alg).distinct()))
    for alg in ALGORITHMS:
        if alg not in have:
            rotate(session, publish_ahead=0, token_ttl=token_ttl, alg=alg)


def published(session: Session, now: datetime | None = None) -> list[SigningKey]:
    """Return the keys the JWKS publishes: every key not yet retired, future ones included."""
    now = now or utcnow()
    return list(session.scalars(
        select(SigningKey).where(or_(SigningKey.retire_at.is_(None), SigningKey.retire_at > now))
        .order_by(SigningKey.active_from)
    ))


_current: dict[tuple[str, str], tuple[float, SigningKey]] = {}
CURRENT_CACHE_SECONDS = 5.0


def current(session: Session, now: datetime | None = None, *, alg: str = DEFAULT_ALG) -> SigningKey:
    """Return the key that signs with ``alg`` now: the newest of that algorithm whose ``active_from`` has
    passed (looked up at most every few seconds per process; a key is published long before it signs)."""
    if now is None:
        where = (str(session.get_bind().url), alg)
        cached = _current.get(where)
        if cached and time.monotonic() - cached[0] < CURRENT_CACHE_SECONDS:
            return cached[1]
        key = _current_at(session, utcnow(), alg)
        session.expunge(key)
        _current[where] = (time.monotonic(), key)
        return key
    return _current_at(session, now, alg)


def _current_at(session: Session, now: datetime, alg: str) -> SigningKey:
    key = next((k for k in reversed(published(session, now)) if k.alg == alg and as_utc(k.active_from) <= now), None)
    if key is None:
        raise LookupError(f"no active {alg} signing key: run `klients-identity migrate` or `rotate-keys --alg {alg}`")
    return key


_imported: dict[str, RSAKey | ECKey] = {}


def private_jwk(key: SigningKey) -> RSAKey | ECKey:
    """Return the joserfc private key of ``key``, with its kid, algorithm and use (parsed once per process:
    loading an RSA private key checks it, which costs tens of milliseconds)."""
    imported = _imported.get(key.kid)
    if imported is None:
        kind = ECKey if KEY_TYPES[key.alg][0] == "EC" else RSAKey
        imported = kind.import_key(key.private_pem, {"kid": key.kid, "alg": key.alg, "use": "sig"})
        _imported[key.kid] = imported
    return imported


def key_set(session: Session, now: datetime | None = None) -> KeySet:
    """Return the published keys (public parts) as a joserfc key set, for verifying locally."""
    return KeySet.import_key_set(jwks(session, now))


def jwks(session: Session, now: datetime | None = None) -> dict[str, Any]:
    """Return the public JWKS document."""
    return {"keys": [private_jwk(k).as_dict(private=False) for k in published(session, now)]}
