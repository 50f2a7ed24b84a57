"""Identity benchmarks beside Keycloak's on the same machine: refresh-token grants per second (16 clients,
each rotating its own token chain) and the code-exchange latency of identity."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import replace
from typing import Any

import requests

from tests.support.keycloak_login import code_flow_token
from tests.support.oidc_helpers import ISSUER, code_for, exchange, logged_in_browser, pkce

CLIENTS = 16
SECONDS = float(os.environ.get("BENCH_REFRESH_SECONDS", "10"))


def _hammer(refresh_once: Any, tokens: list[str]) -> dict[str, Any]:
    """Run ``refresh_once(token) -> next token`` from one thread per token for SECONDS; return the rate."""
    stop = time.perf_counter() + SECONDS
    counts = [0] * len(tokens)
    errors: list[str] = []

    def worker(index: int) -> None:
        token = tokens[index]
        with requests.Session() as session:
            while time.perf_counter() < stop:
                try:
                    token = refresh_once(session, token)
                except RuntimeError as exc:
                    errors.append(str(exc))
                    return
                counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(tokens))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise RuntimeError(errors[0])
    return {"grants": sum(counts), "seconds": round(elapsed, 1), "requests_per_s": round(sum(counts) / elapsed, 1),
            "clients": len(tokens)}


def identity_refresh() -> dict[str, Any]:
    """Identity's refresh grants per second (rotation and reuse detection included)."""
    tokens = []
    for _ in range(CLIENTS):
        verifier, challenge = pkce()
        code = code_for(logged_in_browser()[0], (verifier, challenge))
        tokens.append(exchange(code, verifier).json()["refresh_token"])

    def once(session: requests.Session, token: str) -> str:
        response = session.post(f"{ISSUER}/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                         "client_id": "klients-portal"}, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"identity refresh answered {response.status_code}: {response.text[:200]}")
        return str(response.json()["refresh_token"])

    return _hammer(once, tokens)


def code_exchange_latency(percentiles: Any, n: int = 200) -> dict[str, Any]:
    """The token endpoint's answer to a code exchange (authorization itself not timed)."""
    browser = logged_in_browser()[0]
    samples = []
    for _ in range(n):
        verifier, challenge = pkce()
        code = code_for(browser, (verifier, challenge))
        started = time.perf_counter()
        if exchange(code, verifier).status_code != 200:
            raise RuntimeError("code exchange failed")
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def keycloak_refresh() -> dict[str, Any]:
    """Keycloak's refresh grants per second, same client count, in a realm of its own."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "deploy", "keycloak"))
    import staff_realm

    url = os.environ["KEYCLOAK_URL"]
    spec = replace(staff_realm.StaffRealm.from_env(), realm="klients-bench")
    staff_realm.provision(staff_realm.admin_client(url), spec)
    token_url = f"{url}/realms/{spec.realm}/protocol/openid-connect/token"
    tokens = [code_flow_token(url, spec.realm, staff_realm.OPERATOR_CLIENT, spec.client_secret,
                              f"{spec.identity_url}/operator/callback", "operator", spec.demo_password or "")
              ["refresh_token"] for _ in range(CLIENTS)]

    def once(session: requests.Session, token: str) -> str:
        response = session.post(token_url, data={"grant_type": "refresh_token", "refresh_token": token},
                                auth=(staff_realm.OPERATOR_CLIENT, spec.client_secret), timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"keycloak refresh answered {response.status_code}: {response.text[:200]}")
        return str(response.json()["refresh_token"])

    return _hammer(once, tokens)


def keycloak_fronted(percentiles: Any, stack: Any, logins: int = 20) -> dict[str, Any]:
    """The full brokered login (portal → Keycloak → identity → Smart-ID simulator → back, code exchanged at
    Keycloak) and Keycloak's refresh grants per second in the portal realm, on tokens from those logins."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine, transaction
    from klients_identity.cli import ensure_broker_client
    from klients_identity.settings import Settings
    from tests.support.keycloak import (
        HOLDER,
        OIDC,
        PORTAL,
        PORTAL_CLIENT_ID,
        brokered_login,
        portal_realm,
        staff_realm,
    )
    from tests.support.stack import BIN, register_contract

    portal_realm.provision(staff_realm.admin_client(os.environ["KEYCLOAK_URL"]), PORTAL)
    register_contract(personal_code=HOLDER, holder_name="QUALIFIED OK1", email=None, prefix="B")  # let them in
    with transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))) as session:
        ensure_broker_client(session, replace(Settings.from_env(), portal_token_issuer="keycloak"))  # noqa: S106
    stack.start("identity-keycloak-sync", str(BIN / "klients-identity"), "run", component="identity",
                env={"PORTAL_TOKEN_ISSUER": "keycloak"})
    samples, tokens = [], []
    for _ in range(max(logins, CLIENTS)):
        started = time.perf_counter()
        tokens.append(brokered_login()[1]["refresh_token"])
        samples.append(time.perf_counter() - started)

    def once(session: requests.Session, token: str) -> str:
        response = session.post(f"{OIDC}/token", data={"grant_type": "refresh_token", "refresh_token": token,
                                                       "client_id": PORTAL_CLIENT_ID}, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"keycloak refresh answered {response.status_code}: {response.text[:200]}")
        return str(response.json()["refresh_token"])

    return {"brokered_login": percentiles(samples), "refresh": _hammer(once, tokens[:CLIENTS])}

