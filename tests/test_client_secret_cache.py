"""A confidential client's secret is verified with argon2id once per process and then remembered
(``klients_identity.oauth.clients``): the token endpoint no longer spends an argon2 verification per request, a
wrong secret is still refused every time, and a rotated secret's old value no longer passes."""

from __future__ import annotations

import time

from klients_identity.hashing import hasher
from klients_identity.models import OAuthClient
from klients_identity.oauth.clients import Client


def _timed(client: Client, secret: str) -> tuple[bool, float]:
    started = time.perf_counter()
    answer = client.check_client_secret(secret)
    return answer, time.perf_counter() - started


def test_a_remembered_secret_still_refuses_a_wrong_and_a_rotated_one() -> None:
    row = OAuthClient(client_id="bench-confidential", name="Confidential", secret_hash=hasher.hash("right-secret"),
                      redirect_uris=[], grant_types="authorization_code", scopes="openid")
    client = Client(row)
    first, _ = _timed(client, "right-secret")
    again, seconds = _timed(client, "right-secret")
    assert first and again
    assert seconds < 0.002  # remembered: no argon2 verification (tens of milliseconds) the second time
    for _ in range(2):
        wrong, seconds = _timed(client, "wrong-secret")
        assert not wrong and seconds > 0.005  # verified, and refused, every time
    row.secret_hash = hasher.hash("rotated-secret")  # the client's secret rotated
    assert not client.check_client_secret("right-secret")
    assert client.check_client_secret("rotated-secret")
    assert not Client(OAuthClient(client_id="other-client", name="Other", secret_hash=hasher.hash("x"),
                                  redirect_uris=[], grant_types="", scopes="")).check_client_secret("right-secret")
