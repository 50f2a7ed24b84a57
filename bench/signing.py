"""CPU per access token for each signing algorithm identity offers (RS256, PS256, ES256), in process:
signing as identity does it (``klients_identity.oauth.tokens.issue_access_token``'s header, claims and key) and
verifying as the gateway and the services do (``klients_common.auth.TokenVerifier.verify``, JWS parsing,
key choice by ``kid``, signature and claim checks), with the token's size. No server, no database.

    PYTHONPATH=libs/klients_common:services/identity .venv/bin/python bench/signing.py [--n 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from klients_common.grants import Grant, Role, grants_claim, rights_for
from klients_identity.models import SigningKey
from klients_identity.oauth import keys

ISSUER = "https://id.klients.example.lv"
AUDIENCE = "klients-api"


class StaticKeys:
    """The published keys, held in memory (stands in for the verifier's JWKS cache)."""

    def __init__(self, key_set: KeySet) -> None:
        self.keys = key_set
        self.kids = {k.kid for k in key_set.keys}

    def key_set(self, kid: str) -> KeySet:
        if kid not in self.kids:
            raise InvalidToken("unknown signing key")
        return self.keys


def claims(grants: int) -> dict[str, Any]:
    """An access token's claims as identity mints them, with ``grants`` owner grants."""
    now = int(time.time())
    owned = [Grant(f"LVG-{100000 + i}", Role.OWNER, rights_for(Role.OWNER, None)) for i in range(grants)]
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": str(uuid.uuid4()), "client_id": "klients-portal", "iat": now,
            "exp": now + 300, "jti": str(uuid.uuid4()), "scope": "openid profile email offline_access",
            "acr": "http://eidas.europa.eu/LoA/high", "amr": ["smartid"], "auth_time": now, "sid": str(uuid.uuid4()),
            "grants": grants_claim(owned)}


def measure(alg: str, n: int, grants: int) -> dict[str, Any]:
    """Sign ``n`` tokens and verify each; return CPU milliseconds per token for each step and the size."""
    now = datetime.now(UTC)
    pem = keys.generate(alg).as_pem(private=True)
    row = SigningKey(kid=f"bench-{alg}", alg=alg, private_pem=pem.decode() if isinstance(pem, bytes) else pem,
                     created_at=now, active_from=now)
    private = keys.private_jwk(row)
    verifier = TokenVerifier([TrustedIssuer(ISSUER, f"{ISSUER}/jwks.json", AUDIENCE)],
                             key_sources={ISSUER: StaticKeys(KeySet.import_key_set(
                                 {"keys": [private.as_dict(private=False)]}))})
    payloads = [claims(grants) for _ in range(n)]
    header = {"alg": alg, "typ": "at+jwt", "kid": row.kid}
    for payload in payloads[:20]:  # warm up (imports, caches)
        verifier.verify(jwt.encode(header, payload, private, algorithms=[alg]))
    started = time.process_time()
    tokens = [jwt.encode(header, payload, private, algorithms=[alg]) for payload in payloads]
    signed = time.process_time()
    for token in tokens:
        verifier.verify(token)
    verified = time.process_time()
    return {"alg": alg, "tokens": n, "grants_per_token": grants,
            "sign_cpu_ms": round((signed - started) * 1000 / n, 3),
            "verify_cpu_ms": round((verified - signed) * 1000 / n, 3),
            "total_cpu_ms": round((verified - started) * 1000 / n, 3),
            "token_bytes": len(tokens[0]), "signature_bytes": len(tokens[0].rsplit(".", 1)[1]) * 3 // 4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="tokens per algorithm")
    parser.add_argument("--grants", type=int, default=1, help="grants in each token")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    results = [measure(alg, args.n, args.grants) for alg in keys.ALGORITHMS]
    if args.json:
        print(json.dumps({"machine": platform.processor() or platform.machine(), "results": results}, indent=2))
        return
    print(f"{'alg':6} {'sign ms':>8} {'verify ms':>9} {'total ms':>9} {'token B':>8} {'sig B':>6}  (CPU per token)")
    for r in results:
        print(f"{r['alg']:6} {r['sign_cpu_ms']:8.3f} {r['verify_cpu_ms']:9.3f} {r['total_cpu_ms']:9.3f} "
              f"{r['token_bytes']:8d} {r['signature_bytes']:6d}")


if __name__ == "__main__":
    main()
