"""Identity beside Keycloak on the same machine, both on PostgreSQL and signing with the same algorithm
(``BENCH_SIGNING_ALG``, default RS256): refresh-token grants with 16 chains under wrk (each connection carries
its rotated token forward), the servers' CPU per grant, and identity's code-exchange latency."""

from __future__ import annotations

import base64
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import wrk

from tests.support.keycloak_login import code_flow_token
from tests.support.oidc_helpers import ISSUER, PORTAL, REDIRECT, code_for, exchange, logged_in_browser, pkce

CHAINS = 16
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ALG = os.environ.get("BENCH_SIGNING_ALG", "RS256")
IDLE_SECONDS = 3.0


def set_identity_alg(client_id: str) -> None:
    """Sign ``client_id``'s tokens with ALG (the client's metadata; RS256 needs nothing)."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine, transaction
    from klients_identity.models import OAuthClient

    with transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))) as session:
        row = session.get(OAuthClient, client_id)
        row.client_metadata = {**(row.client_metadata or {}), "access_token_signed_response_alg": ALG,
                               "id_token_signed_response_alg": ALG}


def login_chains() -> list[str]:
    """CHAINS refresh tokens of the portal client, each from a login of its own (Python: a login needs logic)."""
    tokens = []
    for _ in range(CHAINS):
        verifier, challenge = pkce()
        code = code_for(logged_in_browser()[0], (verifier, challenge))
        tokens.append(exchange(code, verifier).json()["refresh_token"])
    return tokens


def identity_refresh(stack: Any) -> dict[str, Any]:
    """Identity's refresh grants (rotation and reuse detection included): rate, latency, CPU per grant."""
    set_identity_alg("klients-portal")
    tokens = login_chains()
    parts = {"identity": [stack.procs["identity"].pid], "postgresql": wrk.postgres()}
    idle = wrk.Cpu(parts).start()  # what the same processes use with no grants (pollers, other databases)
    time.sleep(IDLE_SECONDS)
    idle.stop()
    cpu = wrk.Cpu(parts)
    result = wrk.run(f"{ISSUER}/token", "refresh", connections=CHAINS, threads=CHAINS, seconds=SECONDS, cpu=cpu,
                     env={"BENCH_BODY": "grant_type=refresh_token&client_id=klients-portal"},
                     files={"BENCH_TOKENS": "\n".join(tokens)})
    # The same CPU less what the processes used idle over as long (an estimate: background work varies).
    net = {name: round(1000 * (used - idle.used[name] / IDLE_SECONDS * result["seconds"]) / result["ok"], 3)
           for name, used in cpu.used.items()}
    return {**result, "signing_alg": ALG, "idle_cpu_ms_per_s": {
        name: round(1000 * used / IDLE_SECONDS, 1) for name, used in idle.used.items()},
        "cpu_ms_per_op_less_idle": {**net, "total": round(sum(net.values()), 3)}}


def collect_codes(n: int = 300) -> list[tuple[str, str]]:
    """``n`` fresh codes of one login, each with its PKCE verifier (Python: authorization needs a browser's
    session). A code lives 60 s: collect them just before exchanging them."""
    browser = logged_in_browser()[0]
    codes = []
    for _ in range(n):
        verifier, challenge = pkce()
        codes.append((code_for(browser, (verifier, challenge)), verifier))
    return codes


def code_exchange(codes: list[tuple[str, str]]) -> dict[str, Any]:
    """The token endpoint's answer to a code exchange (authorization itself not timed): wrk with one thread and
    one connection posts the codes in order, each once, every answer a 200 with tokens; beside it the same
    connection's ``GET /healthz`` as many times, the HTTP floor (what any answer costs before the token
    endpoint does anything)."""
    path = urlsplit(ISSUER).path
    exchanges = [f"POST {path}/token " + urlencode({
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": PORTAL,
        "code_verifier": verifier}) for code, verifier in codes]
    result = _sequence(f"{ISSUER}/token", exchanges)
    floor = _sequence(f"{ISSUER}/healthz", [f"GET {path}/healthz"] * len(codes))
    return {**{k: result[k] for k in ("p50_ms", "p90_ms", "p99_ms", "ok")},
            "http_floor": {k: floor[k] for k in ("p50_ms", "p90_ms", "p99_ms", "ok")},
            "client": "wrk, 1 thread, 1 connection"}


def _sequence(url: str, items: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-seq-") as folder:
        done = Path(folder) / "done"
        return wrk.run(url, "sequence", connections=1, threads=1, seconds=120, env={"BENCH_DONE": str(done)},
                       files={"BENCH_ITEMS": "\n".join(items)}, until=done.exists)


def keycloak_refresh() -> dict[str, Any]:
    """Keycloak's refresh grants on PostgreSQL (a Keycloak of the bench's own, ``bench/keycloak_pg.py``), same
    chains, same algorithm (the client's ``access.token.signed.response.alg``), in a realm of its own."""
    from keycloak_pg import KeycloakOnPostgres

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "deploy", "keycloak"))
    import staff_realm

    with KeycloakOnPostgres() as keycloak:
        spec = replace(staff_realm.StaffRealm.from_env(), realm="klients-bench")
        admin = staff_realm.admin_client(keycloak.url)
        staff_realm.provision(admin, spec)
        _keycloak_alg(admin, spec.realm, staff_realm.OPERATOR_CLIENT)
        token_url = f"{keycloak.url}/realms/{spec.realm}/protocol/openid-connect/token"
        tokens = [code_flow_token(keycloak.url, spec.realm, staff_realm.OPERATOR_CLIENT, spec.client_secret,
                                  f"{spec.identity_url}/operator/callback", "operator", spec.demo_password or "")
                  ["refresh_token"] for _ in range(CHAINS)]
        basic = "Basic " + base64.b64encode(f"{staff_realm.OPERATOR_CLIENT}:{spec.client_secret}".encode()).decode()
        cpu = wrk.Cpu({"keycloak": [keycloak.pid], "postgresql": wrk.postgres()})
        # The JIT warms up on a first run (its chains are dropped), as identity's code is warm from the logins.
        warm = [code_flow_token(keycloak.url, spec.realm, staff_realm.OPERATOR_CLIENT, spec.client_secret,
                                f"{spec.identity_url}/operator/callback", "operator", spec.demo_password or "")
                ["refresh_token"] for _ in range(CHAINS)]
        wrk.run(token_url, "refresh", connections=CHAINS, threads=CHAINS, seconds=5,
                env={"BENCH_AUTH": basic}, files={"BENCH_TOKENS": "\n".join(warm)})
        result = wrk.run(token_url, "refresh", connections=CHAINS, threads=CHAINS, seconds=SECONDS, cpu=cpu,
                         env={"BENCH_AUTH": basic}, files={"BENCH_TOKENS": "\n".join(tokens)})
    return {**result, "signing_alg": ALG, "database": "postgresql", "mode": "kc.sh start --db postgres"}


def _keycloak_alg(admin: Any, realm: str, client_id: str) -> None:
    """Sign the client's access and ID tokens with ALG (an EC or RSA-PSS key provider added when needed)."""
    admin.change_current_realm(realm)
    client = admin.get_client(admin.get_client_id(client_id))
    attributes = {**client.get("attributes", {}), "access.token.signed.response.alg": ALG,
                  "id.token.signed.response.alg": ALG}
    admin.update_client(client["id"], {**client, "attributes": attributes})
    if ALG.startswith("ES"):
        providers = admin.get_components({"type": "org.keycloak.keys.KeyProvider"})
        if not any(p["providerId"] == "ecdsa-generated" for p in providers):
            realm_id = admin.get_realm(realm)["id"]
            admin.create_component({"name": "bench-ecdsa", "providerId": "ecdsa-generated", "parentId": realm_id,
                                    "providerType": "org.keycloak.keys.KeyProvider",
                                    "config": {"ecdsaEllipticCurveKey": [f"P-{ALG[2:]}"], "priority": ["100"]}})


def keycloak_fronted(percentiles: Any, stack: Any, logins: int = 20) -> dict[str, Any]:
    """The full brokered login (portal → Keycloak → identity → Smart-ID simulator → back, code exchanged at
    Keycloak) and Keycloak's refresh grants per second in the portal realm, on tokens from those logins."""
    from sqlalchemy.orm import sessionmaker
    from system import BIN, register_contract

    from klients_common.db import make_engine, transaction
    from klients_identity.oauth.registration import ensure_broker_client
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

    portal_realm.provision(staff_realm.admin_client(os.environ["KEYCLOAK_URL"]), PORTAL)
    register_contract(personal_code=HOLDER, holder_name="QUALIFIED OK1", email=None, prefix="B")  # let them in
    with transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))) as session:
        ensure_broker_client(session, replace(Settings.from_env(), portal_token_issuer="keycloak"))  # noqa: S106
    stack.start("identity-keycloak-sync", str(BIN / "klients-identity"), "run", component="identity",
                env={"PORTAL_TOKEN_ISSUER": "keycloak"})
    samples, tokens = [], []
    for _ in range(max(logins, CHAINS)):
        started = time.perf_counter()
        tokens.append(brokered_login()[1]["refresh_token"])
        samples.append(time.perf_counter() - started)

    refresh = wrk.run(f"{OIDC}/token", "refresh", connections=CHAINS, threads=CHAINS, seconds=SECONDS,
                      env={"BENCH_BODY": f"grant_type=refresh_token&client_id={PORTAL_CLIENT_ID}"},
                      files={"BENCH_TOKENS": "\n".join(tokens[:CHAINS])})
    return {"brokered_login": percentiles(samples), "refresh": refresh}

