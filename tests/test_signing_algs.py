"""Per-client signing algorithms: a client registered with ``access_token_signed_response_alg`` /
``id_token_signed_response_alg`` ES256 or PS256 (RS256 by default) gets tokens signed so, by keys of that
algorithm in identity's JWKS, which the gateway and the services accept; an algorithm identity does not offer
is refused at registration; each algorithm's keys rotate on their own."""

from __future__ import annotations

import argparse
import base64
import json
import time

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet

from klients_identity.cli import main
from klients_identity.models import OAuthClient
from klients_identity.oauth import keys
from klients_identity.oauth.registration import add_client
from tests.support.helpers import bearer
from tests.support.oidc_helpers import (
    ISSUER,
    REDIRECT,
    authorize,
    exchange,
    logged_in_browser,
    pkce,
    redirect_params,
    refresh,
)
from tests.support.stack import identity_session

pytestmark = pytest.mark.usefixtures("stack")
CONTRACT = "LVG-100001"


def header(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==="))


def register(alg: str | None, *, id_alg: str | None = None) -> str:
    """Register a public client with the CLI's own function; return its id."""
    client_id = f"alg-{alg or 'default'}-{time.time_ns()}"
    with identity_session() as session:
        add_client(session, argparse.Namespace(
            client_id=client_id, name=None, confidential=False, redirect_uri=[REDIRECT],
            post_logout_redirect_uri=None, scopes="openid profile offline_access",
            access_token_signed_response_alg=alg, id_token_signed_response_alg=id_alg or alg))
    return client_id


def code_flow(client_id: str) -> dict:
    browser, _, _ = logged_in_browser(grants=((CONTRACT, "owner"),))
    verifier, challenge = pkce()
    answer = redirect_params(authorize(browser, client_id=client_id, scope="openid profile offline_access",
                                       code_challenge=challenge, code_challenge_method="S256", nonce="n-1"))
    response = exchange(answer["code"], verifier, client_id=client_id)
    assert response.status_code == 200, response.text
    return response.json()


def published() -> KeySet:
    return KeySet.import_key_set(requests.get(f"{ISSUER}/jwks.json", timeout=10).json())


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_a_client_registered_with_an_algorithm_gets_tokens_signed_so_that_the_gateway_accepts(alg, gateway, rpc):
    client_id = register(alg)
    tokens = code_flow(client_id)
    access, id_token = tokens["access_token"], tokens["id_token"]
    assert header(access)["alg"] == alg and header(access)["typ"] == "at+jwt"
    assert header(id_token)["alg"] == alg and header(id_token)["typ"] == "JWT"
    jwks = published()
    for token in (access, id_token):  # signed by a published key of that very algorithm
        key = jwks.get_by_kid(header(token)["kid"])
        assert key.alg == alg and key.get("use") == "sig"
        assert key.key_type == ("EC" if alg == "ES256" else "RSA")
        assert jwt.decode(token, jwks, algorithms=[alg]).claims["sub"]
    balance = gateway.get(f"/api/v1/contracts/{CONTRACT}/balance", headers=bearer(access))
    assert balance.status_code == 200, balance.get_data(as_text=True)
    assert rpc.call("billing", "get_contract", CONTRACT, context={"authorization": f"Bearer {access}"})
    assert requests.get(f"{ISSUER}/userinfo", headers=bearer(access), timeout=10).status_code == 200
    again = refresh(tokens["refresh_token"], client_id)  # a refreshed token keeps the client's algorithm
    assert again.status_code == 200, again.text
    assert header(again.json()["access_token"])["alg"] == alg
    assert gateway.get(f"/api/v1/contracts/{CONTRACT}/balance",
                       headers=bearer(again.json()["access_token"])).status_code == 200


def test_the_default_is_rs256_and_each_token_kind_follows_its_own_metadata():
    default = code_flow(register(None))
    assert header(default["access_token"])["alg"] == "RS256" and header(default["id_token"])["alg"] == "RS256"
    mixed = code_flow(register("ES256", id_alg="PS256"))
    assert header(mixed["access_token"])["alg"] == "ES256" and header(mixed["id_token"])["alg"] == "PS256"
    # ES256 signatures are 64 bytes against RSA's 256: the token is that much smaller.
    assert len(default["access_token"]) - len(mixed["access_token"]) > 250


def test_discovery_and_jwks_offer_every_algorithm_with_keys_of_its_type():
    meta = requests.get(f"{ISSUER}/.well-known/openid-configuration", timeout=10).json()
    assert meta["id_token_signing_alg_values_supported"] == ["RS256", "PS256", "ES256"]
    document = requests.get(f"{ISSUER}/jwks.json", timeout=10).json()
    assert all(k.get("kid") and k.get("use") == "sig" and k.get("alg") in ("RS256", "PS256", "ES256")
               and "d" not in k for k in document["keys"])
    kinds = {(k["alg"], k["kty"], k.get("crv")) for k in document["keys"]}
    assert {("RS256", "RSA", None), ("PS256", "RSA", None), ("ES256", "EC", "P-256")} <= kinds


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "EdDSA", "es256"])
def test_add_client_refuses_an_algorithm_identity_does_not_offer(alg, capsys):
    client_id = f"bad-alg-{time.time_ns()}"
    with pytest.raises(SystemExit) as exited:
        main(["add-client", client_id, "--redirect-uri", REDIRECT, "--access-token-signed-response-alg", alg])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert f"access_token_signed_response_alg {alg!r} is not offered: use one of RS256, PS256, ES256" in error
    with identity_session() as session:
        assert session.get(OAuthClient, client_id) is None


def test_add_client_registers_the_algorithms_given(capsys):
    client_id = f"cli-alg-{time.time_ns()}"
    assert main(["add-client", client_id, "--redirect-uri", REDIRECT, "--access-token-signed-response-alg", "ES256",
                 "--id-token-signed-response-alg", "PS256"]) == 0
    with identity_session() as session:
        assert session.get(OAuthClient, client_id).client_metadata == {
            "access_token_signed_response_alg": "ES256", "id_token_signed_response_alg": "PS256"}


def test_client_metadata_changed_in_place_is_checked_when_saved():
    """Whoever sets a client's metadata directly (the benchmark does) gets the same check as the CLI's."""
    client_id = register(None)
    with identity_session() as session:
        row = session.get(OAuthClient, client_id)
        row.client_metadata["access_token_signed_response_alg"] = "ES256"
    with identity_session() as session:
        assert session.get(OAuthClient, client_id).client_metadata["access_token_signed_response_alg"] == "ES256"
    with pytest.raises(ValueError, match="id_token_signed_response_alg 'HS256' is not offered"):
        with identity_session() as session:
            row = session.get(OAuthClient, client_id)
            row.client_metadata["id_token_signed_response_alg"] = "HS256"
    with identity_session() as session:
        assert "id_token_signed_response_alg" not in session.get(OAuthClient, client_id).client_metadata


def test_rotation_publishes_the_next_ec_key_ahead_and_leaves_the_other_algorithms_alone():
    with identity_session() as session:
        signing = {alg: keys.current(session, alg=alg).kid for alg in keys.ALGORITHMS}
        upcoming = keys.rotate(session, publish_ahead=600, token_ttl=300, alg="ES256")
        assert {alg: keys.current(session, alg=alg).kid for alg in keys.ALGORITHMS} == signing
        published_keys = {k["kid"]: k for k in keys.jwks(session)["keys"]}
        assert published_keys[upcoming.kid]["alg"] == "ES256" and published_keys[upcoming.kid]["crv"] == "P-256"
        assert set(signing.values()) <= set(published_keys)  # the current ES256 key stays until it retires
        retire_at = {k.kid: k.retire_at for k in keys.published(session)}
        assert retire_at[signing["ES256"]] is not None  # once the new key has signed for a token lifetime
        assert retire_at[signing["RS256"]] is None and retire_at[signing["PS256"]] is None
        session.rollback()
