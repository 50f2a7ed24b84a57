"""Access-token verification and rights checks: the one place every Klients component uses.

``TokenVerifier.verify`` accepts a token only when all of these hold (RFC 8725, RFC 9068):

* the header ``alg`` is in the allow-list (``ALLOWED_ALGORITHMS``, exactly what identity signs with: RS256,
  PS256, ES256; never ``none``, never an HMAC), ``typ`` is one the issuer is configured for (``at+jwt`` for
  identity), and the key is looked up by ``kid`` in the JWKS of a configured issuer only: ``jku``, ``x5u``
  and embedded ``jwk`` headers are never used;
* that key is of the type ``alg`` needs (``KEY_TYPES``: RSA for RS256/PS256, EC P-256 for ES256), a
  signing key (``use``, when given, is ``sig``) published for that very algorithm (``alg``, when given,
  equals the header's): no algorithm confusion;
* the unverified ``iss`` names a configured issuer exactly; the signature verifies with that issuer's key;
* ``aud`` contains our audience; ``exp`` is in the future and ``nbf``/``iat`` not in the future, each
  within a small leeway; ``sub``, ``client_id``, ``iat`` and ``jti`` are present;
* the ``grants`` claim, when present, matches the grants JSON Schema.

JWKS documents are cached per issuer; an unknown ``kid`` triggers at most one refetch per
``min_refresh_seconds``, so a rotated-in key is picked up without letting garbage ``kid`` values turn
into a request flood.

A token that verified is remembered by the verifier (per process, keyed by the token string, at most
``VERIFIED_CACHE_SIZE`` of them) until its ``exp``: the same token presented again skips the parse, the signature
and the claims check (most of a service's per-call verification cost), but is still refused once it expires.
Revocation is not cached: callers check ``RevocationList`` on every call, from memory. A signing key withdrawn
from the JWKS stops new tokens at once and the ones already seen when they expire (five minutes at most).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema
import requests
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from .assurance import LOA_ORDER, LOA_SUBSTANTIAL
from .errors import Forbidden, NotFound, StepUpRequired, Unauthenticated
from .grants import Grant, Right, parse_grants_claim

log = logging.getLogger(__name__)

# What identity signs with (RS256 by default; FAPI 2.0 allows PS256 and ES256) and the key each needs (type, curve).
ALLOWED_ALGORITHMS = ("RS256", "PS256", "ES256")
KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "PS256": ("RSA", None), "ES256": ("EC", "P-256")}
RFC9068_TYPES = ("at+jwt", "application/at+jwt")
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "sub", "jti")
VERIFIED_CACHE_SIZE = 10_000  # verified tokens remembered per verifier (a few KB each)

# Scopes a person's token may carry (what identity offers clients: discovery's ``scopes_supported``). Service
# scopes (``SERVICE_SCOPES``) exist only in a component's own service token, whose subject is
# ``service:<component>`` and whose client is ``klients-<component>``: no person can ask for one.
PERSON_SCOPES = ("openid", "profile", "email", "offline_access", "grants")
REGISTER_READ = "register:read"  # identity reads billing's client register (registration, operator pages)
SERVICE_SCOPES = (REGISTER_READ,)


def service_subject(component: str) -> str:
    """Return the ``sub`` of ``component``'s own service token."""
    return f"service:{component}"


def service_client(component: str) -> str:
    """Return the ``client_id`` of ``component``'s own service token."""
    return f"klients-{component}"


_KID = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")


class InvalidToken(Unauthenticated):
    """The token is malformed, forged, expired or not meant for us (detail says which)."""


@dataclass(frozen=True)
class UnverifiedJws:
    """A compact JWS taken apart, its signature not yet checked: the one parser for every token we verify
    (access tokens here, back-channel logout tokens at identity)."""

    compact: bytes
    header: dict[str, Any]
    claims: dict[str, Any]
    payload: bytes

    @classmethod
    def parse(cls, token: str) -> UnverifiedJws:
        """Return the token's parts, or raise InvalidToken("malformed token")."""
        try:
            compact = token.encode("ascii")
            unverified = jws.extract_compact(compact)
            header = unverified.headers()
            claims = json.loads(unverified.payload)
        except (UnicodeEncodeError, ValueError, JoseError) as exc:
            raise InvalidToken("malformed token") from exc
        if not isinstance(claims, dict):
            raise InvalidToken("malformed token")
        return cls(compact, header, claims, unverified.payload)

    def check_signature(self, jwks: KeySource) -> None:
        """Raise InvalidToken unless the header names no critical extension and a well-formed key id, that key
        of ``jwks`` suits the header's algorithm (``KEY_TYPES``; the key's own ``alg`` and ``use``, when
        published, are that algorithm and ``sig``), and the signature verifies with it under that algorithm
        (which the caller checks against what it allows)."""
        if "crit" in self.header:
            raise InvalidToken("unsupported critical header")
        kid = self.header.get("kid")
        if not isinstance(kid, str) or not _KID.match(kid):
            raise InvalidToken("bad key id")
        alg = self.header.get("alg")
        if not isinstance(alg, str) or alg not in KEY_TYPES:
            raise InvalidToken("signing algorithm not allowed")
        try:
            key = jwks.key_set(kid).get_by_kid(kid)
        except JoseError as exc:
            raise InvalidToken("unknown signing key") from exc
        if (key.key_type, key.get("crv")) != KEY_TYPES[alg] or key.get("alg", alg) != alg or \
                key.get("use", "sig") != "sig":
            raise InvalidToken("the signing key is not one for this algorithm")
        try:
            verified = jws.deserialize_compact(self.compact, key, algorithms=[alg])
        except JoseError as exc:
            raise InvalidToken("bad signature") from exc
        if verified.payload != self.payload:
            raise InvalidToken("bad signature")


@dataclass(frozen=True)
class TrustedIssuer:
    """One issuer whose tokens we accept, and what its tokens must look like."""

    issuer: str
    jwks_uri: str
    audience: str
    token_types: tuple[str, ...] = RFC9068_TYPES
    algorithms: tuple[str, ...] = ALLOWED_ALGORITHMS
    # Keycloak puts the client in ``azp``; identity (RFC 9068) in ``client_id``.
    client_id_claims: tuple[str, ...] = ("client_id",)
    # Keycloak's access and ID tokens share the header ``typ: JWT``; its payload ``typ`` ("Bearer" vs
    # "ID") tells them apart. Empty: no payload ``typ`` check (RFC 9068 issuers).
    payload_types: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrustedIssuer:
        """Build from configuration (JSON or YAML mapping)."""
        return cls(
            issuer=data["issuer"],
            jwks_uri=data.get("jwks_uri") or data["issuer"].rstrip("/") + "/jwks.json",
            audience=data["audience"],
            token_types=tuple(data.get("token_types", RFC9068_TYPES)),
            algorithms=tuple(a for a in data.get("algorithms", ALLOWED_ALGORITHMS) if a in ALLOWED_ALGORITHMS),
            client_id_claims=tuple(data.get("client_id_claims", ("client_id",))),
            payload_types=tuple(data.get("payload_types", ())),
        )


class JwksCache:
    """The JWKS of one issuer, fetched lazily, refreshed on an unknown ``kid`` or when stale."""

    def __init__(self, uri: str, *, ttl_seconds: float = 300, min_refresh_seconds: float = 5,
                 timeout: float = 3.0, session: requests.Session | None = None) -> None:
        self.uri = uri
        self.ttl = ttl_seconds
        self.min_refresh = min_refresh_seconds
        self.timeout = timeout
        self._session = session or requests.Session()
        self._keys: KeySet | None = None
        self._kids: frozenset[str] = frozenset()
        self._fetched_at = float("-inf")
        self._lock = threading.Lock()

    def key_set(self, kid: str) -> KeySet:
        """Return a key set holding ``kid``, refetching once if the cache lacks it or is stale."""
        now = time.monotonic()
        stale = now - self._fetched_at > self.ttl
        if self._keys is None or stale or (kid not in self._kids and now - self._fetched_at > self.min_refresh):
            with self._lock:
                if self._keys is None or time.monotonic() - self._fetched_at > self.min_refresh:
                    self._fetch()
        if self._keys is None or kid not in self._kids:
            raise InvalidToken("unknown signing key")
        return self._keys

    def _fetch(self) -> None:
        try:
            response = self._session.get(self.uri, timeout=self.timeout)
            response.raise_for_status()
            document = response.json()
            keys = KeySet.import_key_set(
                {"keys": [k for k in document.get("keys", []) if k.get("kty") in ("RSA", "EC") and "kid" in k]}
            )
        except (requests.RequestException, ValueError, JoseError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.uri, exc)
            self._fetched_at = time.monotonic()
            if self._keys is None:
                raise InvalidToken("signing keys unavailable") from exc
            return
        self._keys = keys
        self._kids = frozenset(k.kid for k in keys.keys if k.kid)
        self._fetched_at = time.monotonic()


@dataclass(frozen=True)
class AccessToken:
    """A verified access token: who the caller is and what they may do."""

    subject: str
    issuer: str
    client_id: str
    claims: Mapping[str, Any]
    grants: Mapping[str, Grant] = field(default_factory=dict)
    raw: str = ""

    @property
    def acr(self) -> str | None:
        """Return the eIDAS level of assurance of the session."""
        return self.claims.get("acr")

    @property
    def scopes(self) -> frozenset[str]:
        """Return the granted OAuth scopes."""
        return frozenset(str(self.claims.get("scope", "")).split())

    def roles(self) -> frozenset[str]:
        """Return realm roles (Keycloak staff tokens carry them in ``realm_access.roles``)."""
        return frozenset(self.claims.get("realm_access", {}).get("roles", []))

    def grant(self, contract: str, *, now: float | None = None) -> Grant:
        """Return the caller's live grant on ``contract`` or raise NotFound (never tell "exists")."""
        grant = self.grants.get(contract)
        if grant is None or (grant.until is not None and grant.until <= (now or time.time())):
            raise NotFound(f"contract {contract} not found")
        return grant

    def live_grants(self, *, now: float | None = None) -> list[Grant]:
        """Return the grants that have not ended."""
        now = now or time.time()
        return [g for g in self.grants.values() if g.until is None or g.until > now]

    def require(self, contract: str, right: Right | str) -> Grant:
        """Return the grant on ``contract`` if it gives ``right``; raise NotFound or Forbidden."""
        grant = self.grant(contract)
        if Right(right) not in grant.rights:
            raise Forbidden(f"{right} is needed on contract {contract}", {"missing_right": str(right)})
        return grant

    def require_scope(self, scope: str) -> None:
        """Raise Forbidden unless the token was granted ``scope`` (service-to-service calls)."""
        if scope not in self.scopes:
            raise Forbidden(f"scope {scope} is needed", {"missing_scope": scope})

    def require_acr(self, minimum: str = LOA_SUBSTANTIAL) -> None:
        """Raise StepUpRequired unless the session's assurance is at least ``minimum``."""
        if LOA_ORDER.get(self.acr or "", 0) < LOA_ORDER[minimum]:
            raise StepUpRequired("this action needs a stronger login", {"acr_values": minimum})


class KeySource(Protocol):
    """Where an issuer's public keys come from (a JWKS over HTTP, or the issuer's own database)."""

    def key_set(self, kid: str) -> KeySet:
        """Return a key set holding ``kid``, or raise InvalidToken."""


class TokenVerifier:
    """Verifies access tokens from a configured list of issuers."""

    def __init__(self, issuers: Iterable[TrustedIssuer], *, leeway_seconds: int = 30,
                 jwks_ttl_seconds: float = 300, jwks_min_refresh_seconds: float = 5,
                 key_sources: Mapping[str, KeySource] | None = None) -> None:
        if not 0 <= leeway_seconds <= 60:
            raise ValueError("leeway must be between 0 and 60 seconds")
        self.issuers = {i.issuer: i for i in issuers}
        self.leeway = leeway_seconds
        self._jwks: dict[str, KeySource] = {
            i.issuer: JwksCache(i.jwks_uri, ttl_seconds=jwks_ttl_seconds, min_refresh_seconds=jwks_min_refresh_seconds)
            for i in self.issuers.values()
        }
        self._jwks.update(key_sources or {})
        self._verified: dict[str, AccessToken] = {}  # token string -> its verification (see the module's notes)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TokenVerifier:
        """Build from a mapping with ``TOKEN_ISSUERS`` (list or JSON string) and optional ``TOKEN_LEEWAY``."""
        issuers = config["TOKEN_ISSUERS"]
        if isinstance(issuers, str):
            issuers = json.loads(issuers)
        return cls([TrustedIssuer.from_dict(i) for i in issuers], leeway_seconds=int(config.get("TOKEN_LEEWAY", 30)))

    def verify(self, token: str | None, *, now: float | None = None) -> AccessToken:
        """Return the verified token or raise InvalidToken saying why."""
        if not token:
            raise InvalidToken("no access token")
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        now = now if now is not None else time.time()
        seen = self._verified.get(token)
        if seen is not None:
            if seen.claims["exp"] <= now - self.leeway:
                self._verified.pop(token, None)
                raise InvalidToken("token expired")
            return seen
        unverified = UnverifiedJws.parse(token)
        header, payload = unverified.header, unverified.claims

        iss = payload.get("iss")
        issuer = self.issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise InvalidToken("untrusted issuer")
        alg = header.get("alg")
        if alg not in issuer.algorithms:
            raise InvalidToken("signing algorithm not allowed")
        if header.get("typ") not in issuer.token_types:
            raise InvalidToken("not an access token")
        unverified.check_signature(self._jwks[issuer.issuer])
        verified = self._check_claims(issuer, payload, token, now)
        self._remember(token, verified, now)
        return verified

    def _remember(self, token: str, verified: AccessToken, now: float) -> None:
        """Keep ``verified`` for its token; when full, drop the expired entries, or all of them if none is."""
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            expired = [t for t, v in list(self._verified.items()) if v.claims["exp"] <= now - self.leeway]
            for stale in expired or list(self._verified):
                self._verified.pop(stale, None)
        self._verified[token] = verified

    def _check_claims(self, issuer: TrustedIssuer, claims: dict[str, Any], raw: str, now: float) -> AccessToken:
        missing = [c for c in REQUIRED_CLAIMS if c not in claims]
        client_id = next((claims[c] for c in issuer.client_id_claims if isinstance(claims.get(c), str)), None)
        if missing or client_id is None:
            raise InvalidToken("missing claims: " + ", ".join(missing or ["client_id"]))
        if issuer.payload_types and claims.get("typ") not in issuer.payload_types:
            raise InvalidToken("not an access token")
        aud = claims["aud"]
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or issuer.audience not in audiences:
            raise InvalidToken("token not meant for this audience")
        for name in ("exp", "iat", "nbf"):
            if name in claims and (not isinstance(claims[name], int | float) or isinstance(claims[name], bool)):
                raise InvalidToken(f"bad {name}")
        if claims["exp"] <= now - self.leeway:
            raise InvalidToken("token expired")
        if claims["iat"] > now + self.leeway or claims.get("nbf", 0) > now + self.leeway:
            raise InvalidToken("token not yet valid")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise InvalidToken("bad subject")
        try:
            grants = parse_grants_claim(claims.get("grants", {}))
        except jsonschema.ValidationError as exc:
            raise InvalidToken("grants claim does not match its schema") from exc
        return AccessToken(subject=claims["sub"], issuer=issuer.issuer, client_id=client_id,
                           claims=claims, grants=grants, raw=raw)
