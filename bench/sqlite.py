"""The embedded default under concurrency: with every service on its SQLite file (``BENCH_DATABASE=sqlite``,
as ``make run`` has it, the gateway's rate limits in an SQLite file too), 16 refresh chains at identity and
32 connections reading the balance through the gateway at the same time, for BENCH_SECONDS, twice:

* **saturated**: every connection sends its next request as soon as it has its answer, so the two cores are
  the limit and p99 is mostly the queue for them (Little's law: 48 connections / the rate);
* **paced**: every connection waits a random 0–2 × ``PAUSE_MS`` after an answer (wrk's ``delay``,
  ``bench/lua/common.lua``), so the run offers a set load below what the machine serves and p99 shows what
  concurrency itself costs: lock waits between SQLite writers, not the CPU queue.

Every answer must be a success (no ``database is locked``); the target is both p99 within 100 ms. Server CPU
per operation is over all the servers (identity, gateway, billing: no PostgreSQL, no shared database server)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import identity
import wrk
from system import BIN, wait_until

CONTRACT = "LVG-100001"
PAUSE_MS = {"refresh": int(os.environ.get("BENCH_PAUSE_REFRESH_MS", "100")),
            "read": int(os.environ.get("BENCH_PAUSE_READ_MS", "250"))}


def together(stack: Any, gateway: str, token: str) -> dict[str, Any]:
    """Run both loads at once, saturated and then paced; their rates, p99s, failures and CPU."""
    import requests

    limits = Path(os.environ["BILLING_DATABASE_URL"].removeprefix("sqlite:///")).with_name("gateway-limits.db")
    limits.unlink(missing_ok=True)
    stack.stop("gateway")  # as make run starts it: the workers count rate limits together in an SQLite file
    stack.start("gateway", str(BIN / "klients-gateway"), "serve", "--workers", "2", "--threads", "16",
                component="gateway", env={"RATE_LIMIT_STORAGE": f"sqlite:///{limits}"})
    internal = "http://" + os.environ["GATEWAY_INTERNAL_BIND"]
    wait_until("gateway", lambda: requests.get(f"{internal}/readyz", timeout=2).ok)
    servers = {name: [stack.procs[name].pid] for name in ("identity", "gateway", "billing")}
    saturated = _both(gateway, token, identity.login_chains(), servers, pause=None)
    paced = _both(gateway, token, identity.login_chains(), servers, pause=PAUSE_MS)
    return {**saturated, "paced": paced}


def _both(gateway: str, token: str, chains: list[str], servers: dict[str, list[int]],
          pause: dict[str, int] | None) -> dict[str, Any]:
    """16 refresh chains and 32 balance readers at once (each connection pausing ``pause`` ms between
    requests, when given); the rates, p50/p99, failures and the servers' CPU per operation."""
    out: dict[str, Any] = {}
    errors: list[BaseException] = []
    pauses = {kind: {"BENCH_PAUSE_MS": str(ms)} for kind, ms in (pause or {}).items()}

    def refresh() -> None:
        try:
            out["refresh"] = wrk.run(f"{identity.ISSUER}/token", "refresh", connections=identity.CHAINS,
                                     threads=identity.CHAINS, seconds=identity.SECONDS,
                                     env={"BENCH_BODY": "grant_type=refresh_token&client_id=klients-portal",
                                          **pauses.get("refresh", {})},
                                     files={"BENCH_TOKENS": "\n".join(chains)})
        except BaseException as exc:  # reported below, with the readers' numbers
            errors.append(exc)

    cpu = wrk.Cpu(servers).start()
    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        readers = wrk.run(f"{gateway}/api/v1/contracts/{CONTRACT}/balance", "read", connections=32,
                          seconds=identity.SECONDS, env=pauses.get("read", {}), files={"BENCH_TOKEN": token})
    finally:
        thread.join()
        cpu.stop()
    if errors:
        raise errors[0]
    refreshed = out["refresh"]
    result = {"refresh_per_s": refreshed["requests_per_s"], "refresh_p50_ms": refreshed["p50_ms"],
              "refresh_p99_ms": refreshed["p99_ms"], "readers_per_s": readers["requests_per_s"],
              "readers_p50_ms": readers["p50_ms"], "readers_p99_ms": readers["p99_ms"],
              "failed": refreshed["failed"] + readers["failed"],
              "within_100_ms": refreshed["p99_ms"] <= 100 and readers["p99_ms"] <= 100,
              **cpu.ms_per(refreshed["ok"] + readers["ok"])}
    if pause:
        result["pause_ms"] = dict(pause)
    return result
