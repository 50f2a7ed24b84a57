"""The embedded default under concurrency: with every service on its SQLite file (``BENCH_DATABASE=sqlite``,
as ``make run`` has it, the gateway's rate limits in an SQLite file too), 16 refresh chains at identity and
32 connections reading the balance through the gateway at the same time, for BENCH_SECONDS. Every answer
must be a success (no ``database is locked``) and both p99 within 100 ms."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import identity
import wrk
from system import BIN, wait_until

CONTRACT = "LVG-100001"


def together(stack: Any, gateway: str, token: str) -> dict[str, Any]:
    """Run both loads at once; their rates, p99s and failures."""
    import requests

    limits = Path(os.environ["BILLING_DATABASE_URL"].removeprefix("sqlite:///")).with_name("gateway-limits.db")
    limits.unlink(missing_ok=True)
    stack.stop("gateway")  # as make run starts it: the workers count rate limits together in an SQLite file
    stack.start("gateway", str(BIN / "klients-gateway"), "serve", "--workers", "2", "--threads", "16",
                component="gateway", env={"RATE_LIMIT_STORAGE": f"sqlite:///{limits}"})
    internal = "http://" + os.environ["GATEWAY_INTERNAL_BIND"]
    wait_until("gateway", lambda: requests.get(f"{internal}/readyz", timeout=2).ok)
    chains = identity.login_chains()
    out: dict[str, Any] = {}
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            out["refresh"] = wrk.run(f"{identity.ISSUER}/token", "refresh", connections=identity.CHAINS,
                                     threads=identity.CHAINS, seconds=identity.SECONDS,
                                     env={"BENCH_BODY": "grant_type=refresh_token&client_id=klients-portal"},
                                     files={"BENCH_TOKENS": "\n".join(chains)})
        except BaseException as exc:  # reported below, with the readers' numbers
            errors.append(exc)

    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        readers = wrk.run(f"{gateway}/api/v1/contracts/{CONTRACT}/balance", "read", connections=32,
                          seconds=identity.SECONDS, files={"BENCH_TOKEN": token})
    finally:
        thread.join()
    if errors:
        raise errors[0]
    refreshed = out["refresh"]
    return {"refresh_per_s": refreshed["requests_per_s"], "refresh_p50_ms": refreshed["p50_ms"],
            "refresh_p99_ms": refreshed["p99_ms"], "readers_per_s": readers["requests_per_s"],
            "readers_p50_ms": readers["p50_ms"], "readers_p99_ms": readers["p99_ms"],
            "failed": refreshed["failed"] + readers["failed"],
            "within_100_ms": refreshed["p99_ms"] <= 100 and readers["p99_ms"] <= 100}
