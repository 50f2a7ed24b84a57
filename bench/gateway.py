"""The gateway's authorised reads under wrk: the contract and its balance with 32 connections, for a person with
one grant and for one with 500, with the servers' CPU per request (gateway, billing, PostgreSQL, RabbitMQ).

A token stays under 4 KB (docs/tokens.md, "Grants"), so no token carries 500 grants: the property manager's
plain token carries the first 12 (``grants_complete: false``) and the portal asks for contract-scoped tokens
(RFC 8707) for the rest. Both are measured, against the one-grant token.
"""

from __future__ import annotations

import os
from typing import Any

import wrk

from klients_common.grants import ALL_RIGHTS, Role
from klients_common.grants import Grant as TokenGrant

CONNECTIONS = 32
CONTRACT = "LVG-100001"
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


def _token(grants: list[TokenGrant], *, partial: bool = False) -> str:
    from system import mint_token

    return mint_token({g.contract: g for g in grants}, subject="bench-manager", partial=partial, ttl=900)


def read(url: str, token: str, cpu: wrk.Cpu, connections: int = CONNECTIONS) -> dict[str, Any]:
    """GET ``url`` with ``token`` from ``connections`` wrk connections: rate, latency, CPU per request."""
    wrk.run(url, "read", connections=connections, seconds=2, files={"BENCH_TOKEN": token})  # warm-up
    result = wrk.run(url, "read", connections=connections, seconds=SECONDS, cpu=cpu, files={"BENCH_TOKEN": token})
    return {**result, "token_bytes": len(token)}


def server_cpu(stack: Any, *services: str) -> wrk.Cpu:
    """CPU of the gateway, the named services, PostgreSQL and RabbitMQ (each a process tree)."""
    parts = {name: [stack.procs[name].pid] for name in ("gateway", *services)}
    return wrk.Cpu({**parts, "postgresql": wrk.postgres(), "rabbitmq": wrk.rabbitmq()})


def balance(gateway: str, stack: Any) -> dict[str, Any]:
    """Return the balance endpoint's numbers for each kind of token."""
    url = f"{gateway}/api/v1/contracts/{CONTRACT}/balance"
    one = [TokenGrant(CONTRACT, Role.OWNER, ALL_RIGHTS)]
    many = one + [TokenGrant(f"ZZ-{i:06d}", Role.OWNER, ALL_RIGHTS) for i in range(499)]  # sorts after CONTRACT
    cpu = server_cpu(stack, "billing")
    return {
        "one_grant": read(url, _token(one), cpu),
        "500_grants_plain_token_first_12": read(url, _token(many), cpu),
        "500_grants_contract_scoped_token": read(url, _token(one, partial=True), cpu),
    }
