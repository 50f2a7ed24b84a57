"""A third-party relying party against identity: idpyoidc (the Python OpenID Connect library of the IdentityPython
project, not ours) discovers identity, logs a person in with the code flow and PKCE, validates the ID token
its own way (signature from the JWKS, iss, aud, nonce, iat/exp, at_hash), reads userinfo, refreshes and logs
out. What it finds wrong with identity's answers would fail here."""

from __future__ import annotations

import argparse
import time
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from cryptojwt.key_jar import KeyJar
from idpyoidc.client.defaults import DEFAULT_OIDC_SERVICES
from idpyoidc.client.rp_handler import RPHandler

from tests.support.oidc_helpers import ISSUER, logged_in_browser
from tests.support.stack import identity_session

pytestmark = pytest.mark.usefixtures("stack")

RP_BASE = "http://127.0.0.1:18996"
CALLBACK = f"{RP_BASE}/authz_cb"
AFTER_LOGOUT = f"{RP_BASE}/logged_out"


@pytest.fixture(scope="module")
def idpyoidc_client(stack) -> tuple[str, str]:
    from klients_identity.oauth.registration import add_client

    client_id = f"idpyoidc-rp-{int(time.time())}"
    with identity_session() as session:
        secret = add_client(session, argparse.Namespace(
            client_id=client_id, name="idpyoidc RP", confidential=True, redirect_uri=[CALLBACK],
            post_logout_redirect_uri=[AFTER_LOGOUT], scopes="openid profile email offline_access"))
    return client_id, secret


def relying_party(client_id: str, secret: str) -> RPHandler:
    services = {**DEFAULT_OIDC_SERVICES,
                "end_session": {"class": "idpyoidc.client.oidc.end_session.EndSession"}}
    config = {
        "issuer": ISSUER, "client_id": client_id, "client_secret": secret, "client_type": "oidc",
        "redirect_uris": [CALLBACK], "post_logout_redirect_uris": [AFTER_LOGOUT],
        "preference": {"response_types_supported": ["code"],
                       "scopes_supported": ["openid", "profile", "offline_access"],
                       "token_endpoint_auth_methods_supported": ["client_secret_basic"]},
        "client_authn_methods": ["client_secret_basic"],
        "add_ons": {"pkce": {"function": "idpyoidc.client.oauth2.add_on.pkce.add_support",
                             "kwargs": {"code_challenge_length": 64, "code_challenge_method": "S256"}}},
        "services": services,
    }
    return RPHandler(base_url=RP_BASE, client_configs={ISSUER: config}, keyjar=KeyJar(), services=services,
                     httpc_params={"verify": True, "timeout": 10})


def test_idpyoidc_logs_in_validates_the_id_token_refreshes_and_logs_out(idpyoidc_client):
    browser, person, sid = logged_in_browser()
    rph = relying_party(*idpyoidc_client)

    url = rph.begin(issuer_id=ISSUER, req_args={"scope": "openid profile offline_access"})
    assert url.startswith(f"{ISSUER}/authorize?") and "code_challenge_method=S256" in url
    answer = browser.get(url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and answer.headers["Location"].startswith(CALLBACK), answer.text[:300]
    response = {k: v[0] for k, v in parse_qs(urlparse(answer.headers["Location"]).query).items()}

    result = rph.finalize(ISSUER, response)  # token request, ID token validation, userinfo
    assert "error" not in result, result
    id_token = result["id_token"]
    assert id_token["sub"] == person and id_token["iss"] == ISSUER and id_token["sid"] == sid
    assert result["userinfo"]["sub"] == person and result["userinfo"]["given_name"] == "Ilze"

    state = result["state"]
    refreshed = rph.refresh_access_token(state)
    assert "error" not in refreshed.to_dict(), refreshed.to_dict()
    assert refreshed["access_token"] and refreshed["access_token"] != result["token"]
    assert requests.get(f"{ISSUER}/userinfo", headers={"Authorization": f"Bearer {refreshed['access_token']}"},
                        timeout=10).json()["sub"] == person

    client = rph.issuer2rp[ISSUER]
    logout = client.logout(state, post_logout_redirect_uri=AFTER_LOGOUT)
    assert logout["url"].startswith(f"{ISSUER}/logout")
    done = browser.get(logout["url"], allow_redirects=False, timeout=10)
    assert done.status_code == 302 and done.headers["Location"].startswith(AFTER_LOGOUT), done.text[:300]
    back = parse_qs(urlparse(done.headers["Location"]).query)
    assert back.get("state") == [logout["request"]["state"]]
    # The login at identity and its refresh tokens ended: the RP cannot refresh again, nor log in silently.
    with pytest.raises(Exception):  # noqa: B017 - idpyoidc raises its own error types for an error response
        again = rph.refresh_access_token(state)
        assert "error" in again.to_dict()
        raise RuntimeError(again.to_dict()["error"])
    silent = browser.get(rph.init_authorization(client=client, req_args={"prompt": "none"}),
                         allow_redirects=False, timeout=10)
    assert "error=login_required" in silent.headers["Location"]
