"""The balance endpoint under 32 concurrent clients, for a person with one grant and for one with 500.

A token stays under 4 KB (product.md §4), so no token carries 500 grants: the property manager's plain
token carries the first 12 (``grants_complete: false``) and the portal asks for contract-scoped tokens
(RFC 8707) for the rest. Both of those are measured, against the one-grant token.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from klients_common.grants import ALL_RIGHTS, Role
from klients_common.grants import Grant as TokenGrant

CLIENTS = 32
CONTRACT = "LVG-100001"


def _token(grants: list[TokenGrant], *, partial: bool = False) -> str:
    from tests.support.stack import mint_token

    return mint_token({g.contract: g for g in grants}, subject="bench-manager", partial=partial)


def load(url: str, token: str, requests_total: int, percentiles: Callable[[list[float]], dict[str, Any]]
          ) -> dict[str, Any]:
    """GET ``url`` as ``token``'s holder from 32 clients; latency percentiles, rate and the token's size."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {token}"}

    def one(_: int) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        answer = local.session.get(url, headers=headers, timeout=10)
        if answer.status_code != 200:
            raise RuntimeError(f"balance answered {answer.status_code}")
        return time.perf_counter() - started

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(CLIENTS * 4)))
        started = time.perf_counter()
        samples = list(pool.map(one, range(requests_total)))
        elapsed = time.perf_counter() - started
    return {**percentiles(samples), "requests_per_s": round(requests_total / elapsed, 1),
            "token_bytes": len(token)}


def balance(gateway: str, percentiles: Callable[[list[float]], dict[str, Any]],
            requests_total: int = 4000) -> dict[str, Any]:
    """Return the balance endpoint's numbers for each kind of token."""
    url = f"{gateway}/api/v1/contracts/{CONTRACT}/balance"
    one = [TokenGrant(CONTRACT, Role.OWNER, ALL_RIGHTS)]
    many = one + [TokenGrant(f"ZZ-{i:06d}", Role.OWNER, ALL_RIGHTS) for i in range(499)]  # sorts after CONTRACT
    return {
        "one_grant": load(url, _token(one), requests_total, percentiles),
        "500_grants_plain_token_first_12": load(url, _token(many), requests_total, percentiles),
        "500_grants_contract_scoped_token": load(url, _token(one, partial=True), requests_total, percentiles),
    }
