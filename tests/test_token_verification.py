"""Access-token verification (RFC 8725, RFC 9068; docs/security.md, cases 30-36), at the gateway and in
a service, against identity's real JWKS endpoint."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from klients_common.errors import Unauthenticated
from tests.support.stack import identity_session


def b64(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**override):
    now = int(time.time())
    base = {"iss": os.environ["IDENTITY_ISSUER"], "aud": "klients-api", "sub": "person-1",
            "client_id": "klients-portal", "iat": now, "exp": now + 300, "jti": "j-1", "scope": "openid",
            "acr": "http://eidas.europa.eu/LoA/high",
            "grants": {"LVG-100001": {"role": "owner", "rights": ["bills:read"]}}}
    base.update(override)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(scope="module")
def identity_key(stack):
    from klients_identity.oauth import keys

    with identity_session() as session:
        return keys.private_jwk(keys.current(session))


@pytest.fixture(scope="module")
def sign(identity_key):
    def _sign(payload, header=None, key=None):
        header = {"alg": "RS256", "typ": "at+jwt", "kid": identity_key.kid, **(header or {})}
        return jwt.encode({k: v for k, v in header.items() if v is not None}, payload, key or identity_key,
                          algorithms=[header["alg"]])
    return _sign


@pytest.fixture(scope="module")
def verifier(stack):
    return TokenVerifier([TrustedIssuer(os.environ["IDENTITY_ISSUER"], os.environ["IDENTITY_ISSUER"] + "/jwks.json",
                                        "klients-api")])


class CountingServer(HTTPServer):
    """An attacker's key server: counts every request so tests prove it is never contacted."""

    hits = 0


@pytest.fixture(scope="module")
def attacker_server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.server.hits += 1
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps({"keys": [ATTACKER.as_dict(private=False)]}).encode())

        def log_message(self, *args):
            pass

    server = CountingServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


ATTACKER = RSAKey.generate_key(2048, parameters={"kid": "attacker"}, private=True)


def forged_tokens(sign, identity_key, attacker_url):
    """Every forged or unacceptable token, with the reason it must be refused."""
    public_pem = identity_key.as_pem(private=False)
    hs_header = b64({"alg": "HS256", "typ": "at+jwt", "kid": identity_key.kid})
    hs_body = b64(claims())
    hs_sig = b64(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest())
    now = int(time.time())
    return {
        "alg-none": f"{b64({'alg': 'none', 'typ': 'at+jwt', 'kid': identity_key.kid})}.{b64(claims())}.",
        "hs256-with-public-key": f"{hs_header}.{hs_body}.{hs_sig}",
        "attacker-key-same-kid": sign(claims(), key=RSAKey.generate_key(2048, parameters={"kid": identity_key.kid},
                                                                        private=True)),
        "embedded-jwk": sign(claims(), {"kid": "attacker", "jwk": ATTACKER.as_dict(private=False)}, key=ATTACKER),
        "foreign-jku": sign(claims(), {"kid": "attacker", "jku": attacker_url}, key=ATTACKER),
        "x5u": sign(claims(), {"kid": "attacker", "x5u": attacker_url}, key=ATTACKER),
        "kid-path-traversal": sign(claims(), {"kid": "../../etc/passwd"}),
        "kid-sql": sign(claims(), {"kid": "x' OR '1'='1"}),
        "wrong-issuer": sign(claims(iss="https://evil.example")),
        "issuer-with-trailing-slash": sign(claims(iss=os.environ["IDENTITY_ISSUER"] + "/")),
        "wrong-audience": sign(claims(aud="some-other-api")),
        "expired-61s": sign(claims(iat=now - 400, exp=now - 61)),
        "issued-2min-in-future": sign(claims(iat=now + 120)),
        "not-before-in-future": sign(claims(nbf=now + 120)),
        "id-token-typ-jwt": sign(claims(), {"typ": "JWT"}),
        "typ-missing": sign(claims(), {"typ": None}),
        "logout-token-typ": sign(claims(), {"typ": "logout+jwt"}),
        "alg-rs512-not-allowed": sign(claims(), {"alg": "RS512"}, key=RSAKey.import_key(
            identity_key.as_pem(private=True), {"kid": identity_key.kid})),
        # Algorithm confusion: an allowed algorithm, but not the one the kid's key is published for.
        "es256-header-on-rsa-kid": sign(claims(), {"alg": "ES256"}, key=ECKey.generate_key(
            "P-256", parameters={"kid": identity_key.kid}, private=True)),
        "ps256-with-the-rs256-key": sign(claims(), {"alg": "PS256"}, key=RSAKey.import_key(
            identity_key.as_pem(private=True), {"kid": identity_key.kid})),
        **{f"missing-{c}": sign(claims(**{c: None})) for c in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti")},
        "grants-not-matching-schema": sign(claims(grants={"LVG-100001": {"role": "king", "rights": ["all"]}})),
        "bad-exp-type": sign(claims(exp="tomorrow")),
    }


@pytest.fixture(scope="module")
def forged(sign, identity_key, attacker_server):
    url = f"http://127.0.0.1:{attacker_server.server_port}/jwks.json"
    return forged_tokens(sign, identity_key, url)


CASES = sorted([
    "alg-none", "hs256-with-public-key", "attacker-key-same-kid", "embedded-jwk", "foreign-jku", "x5u",
    "kid-path-traversal", "kid-sql", "wrong-issuer", "issuer-with-trailing-slash", "wrong-audience", "expired-61s",
    "issued-2min-in-future", "not-before-in-future", "id-token-typ-jwt", "typ-missing", "logout-token-typ",
    "alg-rs512-not-allowed", "es256-header-on-rsa-kid", "ps256-with-the-rs256-key", "missing-iss", "missing-exp",
    "missing-aud", "missing-sub", "missing-client_id", "missing-iat", "missing-jti", "grants-not-matching-schema",
    "bad-exp-type"])


@pytest.mark.parametrize("case", CASES)
def test_verifier_refuses(case, forged, verifier, attacker_server):
    with pytest.raises(InvalidToken):
        verifier.verify(forged[case])
    assert attacker_server.hits == 0


@pytest.mark.parametrize("case", CASES)
def test_gateway_answers_401(case, forged, gateway):
    response = gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {forged[case]}"})
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    assert forged[case] not in response.get_data(as_text=True)


@pytest.mark.parametrize("case", ["alg-none", "hs256-with-public-key", "wrong-audience", "expired-61s",
                                  "id-token-typ-jwt", "embedded-jwk", "es256-header-on-rsa-kid"])
def test_service_refuses(case, forged, rpc):
    with pytest.raises(Unauthenticated):
        rpc.call("billing", "get_contract", "LVG-100001", context={"authorization": f"Bearer {forged[case]}"})


def test_small_clock_skew_is_accepted(sign, verifier):
    now = int(time.time())
    assert verifier.verify(sign(claims(iat=now + 5, exp=now - 5))).subject == "person-1"


def test_a_verified_token_is_remembered_until_it_expires_and_then_refused(sign, verifier):
    now = int(time.time())
    token = sign(claims(exp=now + 60, jti="j-remembered"))
    first = verifier.verify(token)
    assert verifier.verify(f"Bearer {token}") is first  # the second presentation skips the signature check
    assert verifier.verify(token, now=now + 60 + 29) is first  # within the leeway
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, now=now + 60 + 31)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token, now=now + 60 + 31)  # and after it was forgotten: the full check says the same


def test_rfc9068_media_type_form_is_accepted(sign, verifier):
    assert verifier.verify(sign(claims(), {"typ": "application/at+jwt"})).subject == "person-1"


def test_no_authorization_header_gets_401_with_challenge(gateway):
    response = gateway.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_rotated_key_is_fetched_and_old_tokens_stay_valid(stack, mint, verifier):
    """A key rotated in after the verifier cached the JWKS is picked up; the old key's tokens still verify."""
    from sqlalchemy import delete, update

    from klients_identity.models import SigningKey
    from klients_identity.oauth import keys

    before = mint({"LVG-100001": "owner"})
    assert verifier.verify(before)
    verifier._jwks[os.environ["IDENTITY_ISSUER"]].min_refresh = 0  # type: ignore[attr-defined]
    with identity_session() as session:
        old_kid = keys.current(session).kid
        new_kid = keys.rotate(session, publish_ahead=0, token_ttl=300).kid
    try:
        after = mint({"LVG-100001": "owner"})
        assert json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "==="))["kid"] == new_kid
        assert verifier.verify(after).subject == "person-1"
        assert verifier.verify(before).subject == "person-1"
        with identity_session() as session:
            assert {old_kid, new_kid} <= {k.kid for k in keys.published(session)}
    finally:
        # Other tests' verifiers cached the JWKS with the old key: put it back in charge.
        with identity_session() as session:
            session.execute(delete(SigningKey).where(SigningKey.kid == new_kid))
            session.execute(update(SigningKey).where(SigningKey.kid == old_kid).values(retire_at=None))
        keys.forget_cached()


def test_key_published_ahead_does_not_sign_yet(stack):
    from klients_identity.oauth import keys

    with identity_session() as session:
        signing = keys.current(session).kid
        upcoming = keys.rotate(session, publish_ahead=600, token_ttl=300)
        assert keys.current(session).kid == signing
        assert upcoming.kid in {k.kid for k in keys.published(session)}
        session.rollback()
