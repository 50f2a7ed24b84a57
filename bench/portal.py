"""The portal's overview page for a logged-in person (server-side, encrypted tokens; one gateway call, the
overview endpoint, which asks billing and metering at once): p50/p99 sequentially, and requests/s with 32
clients, each its own person and session."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CLIENTS = 32
CONTRACT = "LVG-100001"


def _overview(browser: Any, url: str) -> float:
    started = time.perf_counter()
    answer = browser.get(url, timeout=10)
    if answer.status_code != 200 or 'id="amount-due"' not in answer.text:
        raise RuntimeError(f"the overview answered {answer.status_code}")
    return time.perf_counter() - started


def overview(percentiles: Callable[[list[float]], dict[str, Any]], timed: Callable[..., list[float]],
             sequential: int = 500, requests_total: int = 2000) -> dict[str, Any]:
    """Return the overview's latency (sequential) and its rate under 32 clients."""
    from tests.support.portal_helpers import PORTAL_URL, portal_login

    url = f"{PORTAL_URL}/c/{CONTRACT}"
    browser, _ = portal_login(((CONTRACT, "owner"),))
    single = percentiles(timed(lambda: _overview(browser, url), sequential))
    browsers = [portal_login(((CONTRACT, "owner"),))[0] for _ in range(CLIENTS)]
    for each in browsers:  # a kept-alive connection the server closed is retried once, as browsers do
        each.mount("http://", HTTPAdapter(max_retries=Retry(total=1, read=1, allowed_methods={"GET"})))
    local = threading.local()
    handed = iter(browsers)
    lock = threading.Lock()

    def one(_: int) -> float:
        if not hasattr(local, "browser"):
            with lock:
                local.browser = next(handed)
        return _overview(local.browser, url)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(CLIENTS * 2)))
        started = time.perf_counter()
        samples = list(pool.map(one, range(requests_total)))
        elapsed = time.perf_counter() - started
    return {"sequential": single, "clients_32": {**percentiles(samples),
                                                  "requests_per_s": round(requests_total / elapsed, 1)}}
