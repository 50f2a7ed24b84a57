"""The portal's overview page for a logged-in person (server-side, encrypted tokens; one gateway call, the
overview endpoint, which asks billing and metering at once): p50/p99 sequentially from Python, and with 32
clients from wrk (``bench/lua/page.lua``: one connection per thread, each its own person and session cookie,
every answer a 200 with the amount due on it), with the servers' CPU per page."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import wrk

CLIENTS = 32
CONTRACT = "LVG-100001"
MARK = 'id="amount-due"'
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))


def _overview(browser: Any, url: str) -> float:
    started = time.perf_counter()
    answer = browser.get(url, timeout=10)
    if answer.status_code != 200 or MARK not in answer.text:
        raise RuntimeError(f"the overview answered {answer.status_code}")
    return time.perf_counter() - started


def overview(percentiles: Callable[[list[float]], dict[str, Any]], timed: Callable[..., list[float]],
             stack: Any, sequential: int = 500) -> dict[str, Any]:
    """Return the overview's latency (sequential) and its rate, latency and CPU per page under 32 clients."""
    from tests.support.portal_helpers import PORTAL_URL, portal_login

    url = f"{PORTAL_URL}/c/{CONTRACT}"
    browser, _ = portal_login(((CONTRACT, "owner"),))
    single = percentiles(timed(lambda: _overview(browser, url), sequential))
    cookies = []
    for _ in range(CLIENTS):
        person, _ = portal_login(((CONTRACT, "owner"),))
        _overview(person, url)  # the session works, and its tokens are in place
        cookies.append("; ".join(f"{cookie.name}={cookie.value}" for cookie in person.cookies))
    cpu = wrk.Cpu({**{name: [stack.procs[name].pid] for name in ("portal", "gateway", "billing", "metering")},
                   "postgresql": wrk.postgres(), "rabbitmq": wrk.rabbitmq()})
    clients = wrk.run(url, "page", connections=CLIENTS, threads=CLIENTS, seconds=SECONDS, cpu=cpu,
                      env={"BENCH_MARK": MARK}, files={"BENCH_COOKIES": "\n".join(cookies)})
    return {"sequential": single, "clients_32": clients}
