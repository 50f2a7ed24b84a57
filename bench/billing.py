"""Billing benchmarks: the amount-due RPC on a register of a million contracts with twelve million invoices,
and payment initiations per second through the gateway (with the provider simulator answering)."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sqlalchemy import text

from klients_common.db import make_engine
from klients_common.rpc import RpcClient
from tests.support.stack import mint_token

CONTRACTS = int(os.environ.get("BENCH_CONTRACTS", "1000000"))
INVOICES_PER_CONTRACT = 12

LOAD = [
    """INSERT INTO contracts (number, holder_name, holder_personal_code, supply_address, email, status, start_date,
                              credit)
       SELECT 'M-' || lpad(n::text, 8, '0'), 'Bench Holder ' || n, '010180-15097', 'Bench iela ' || n, NULL,
              'active', DATE '2020-01-01', 0
       FROM generate_series(1, :contracts) AS n""",
    """INSERT INTO invoices (number, contract_id, period, issue_date, due_date, net, vat, vat_rate, total, paid, status,
                             estimated, consumption_kwh, holder_name, supply_address)
       SELECT to_char(DATE '2025-01-01' + (m - 1) * INTERVAL '1 month', 'YYYYMM') || '-' || c.number, c.id,
              to_char(DATE '2025-01-01' + (m - 1) * INTERVAL '1 month', 'YYYY-MM'),
              DATE '2025-02-03' + (m - 1) * INTERVAL '1 month', DATE '2025-02-23' + (m - 1) * INTERVAL '1 month',
              50.00, 10.50, 0.21, 60.50, CASE WHEN m < 12 THEN 60.50 ELSE 0 END,
              CASE WHEN m < 12 THEN 'paid' ELSE 'open' END, false, 1000, c.holder_name, c.supply_address
       FROM contracts c CROSS JOIN generate_series(1, :per_contract) AS m
       WHERE c.number LIKE 'M-%'""",
    "ANALYZE contracts",
    "ANALYZE invoices",
]


def load_register() -> dict[str, Any]:
    """Fill the billing database with the bench register; return how long it took."""
    engine = make_engine(os.environ["BILLING_DATABASE_URL"])
    started = time.perf_counter()
    with engine.begin() as conn:
        existing = conn.execute(text("SELECT count(*) FROM contracts WHERE number LIKE 'M-%'")).scalar_one()
        if existing < CONTRACTS:
            for statement in LOAD:
                conn.execute(text(statement), {"contracts": CONTRACTS, "per_contract": INVOICES_PER_CONTRACT})
        invoices = conn.execute(text("SELECT count(*) FROM invoices")).scalar_one()
    engine.dispose()
    return {"contracts": CONTRACTS, "invoices": invoices, "load_seconds": round(time.perf_counter() - started, 1)}


def amount_due_latency(rpc: RpcClient, percentiles: Any, timed: Any, n: int) -> dict[str, Any]:
    """The balance RPC for random contracts of the big register, sequentially."""
    numbers = [f"M-{random.randint(1, CONTRACTS):08d}" for _ in range(200)]
    tokens = [(c, {"authorization": f"Bearer {mint_token({c: 'owner'})}"}) for c in numbers]
    cursor = iter(range(10**9))

    def call() -> None:
        contract, context = tokens[next(cursor) % len(tokens)]
        if rpc.call("billing", "get_balance", contract, context=context)["amount_due"] != "60.50":
            raise RuntimeError("unexpected balance")

    return percentiles(timed(call, n))


def payment_initiations(gateway: str, percentiles: Any, count: int = 400) -> dict[str, Any]:
    """Start ``count`` payments with 32 clients (each a different contract and key)."""
    numbers = [f"M-{random.randint(1, CONTRACTS):08d}" for _ in range(count)]
    tokens = {c: mint_token({c: "owner"}) for c in numbers}
    local = threading.local()

    def initiate(contract: str) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        response = local.session.post(f"{gateway}/api/v1/contracts/{contract}/payments", json={"amount": "10.00"},
                                      headers={"Authorization": f"Bearer {tokens[contract]}",
                                               "Idempotency-Key": f"bench-{uuid.uuid4()}"}, timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"payment answered {response.status_code}: {response.text}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        latencies = list(pool.map(initiate, numbers))
    return {**percentiles(latencies), "requests_per_s": round(count / (time.perf_counter() - started), 1)}
