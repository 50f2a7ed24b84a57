"""Metering benchmarks: end-to-end reading submissions per second (gateway → metering → the
``reading_accepted`` event applied by billing) and consumption-history latency over ten years."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from klients_billing.models import MeteredConsumption
from klients_common.db import make_engine
from klients_metering.models import Meter, Reading
from tests.support.stack import mint_token

METERS = int(os.environ.get("BENCH_METERS", "400"))


def _meters_with_history(count: int, years: int) -> list[Meter]:
    factory = sessionmaker(make_engine(os.environ["METERING_DATABASE_URL"]), expire_on_commit=False)
    meters = []
    with factory() as session:
        for _ in range(count):
            meter = Meter(contract=f"B-{uuid.uuid4().hex[:10].upper()}", serial_number=f"B-{uuid.uuid4().hex[:12]}",
                          meter_type="G4", digits=5, unit="m3", installed_on=date(2026 - years, 10, 1),
                          install_reading=0)
            session.add(meter)
            session.flush()
            value = 0
            for month in range(years * 12 - 1):
                day = date(2026 - years + (9 + month) // 12, (9 + month) % 12 + 1, 28)
                value += 80
                session.add(Reading(meter_id=meter.id, value=value, read_on=day, period=f"{day:%Y-%m}",
                                    source="customer", rollover=False, flagged=False,
                                    submitted_at=datetime(day.year, day.month, day.day, tzinfo=UTC)))
            meters.append(meter)
        session.commit()
    return meters


def submissions_end_to_end(gateway: str, percentiles: Any) -> dict[str, Any]:
    """Submit one reading for each of METERS contracts with 32 clients; time until billing holds them all."""
    meters = _meters_with_history(METERS, 1)
    tokens = {m.contract: mint_token({m.contract: "owner"}) for m in meters}
    billing = sessionmaker(make_engine(os.environ["BILLING_DATABASE_URL"]))
    contracts = [m.contract for m in meters]
    local = threading.local()

    def submit(meter: Meter) -> float:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        started = time.perf_counter()
        response = local.session.post(
            f"{gateway}/api/v1/contracts/{meter.contract}/meters/{meter.serial_number}/readings",
            json={"value": 80 * 11 + 90}, headers={"Authorization": f"Bearer {tokens[meter.contract]}"}, timeout=30)
        if response.status_code != 201:
            raise RuntimeError(f"submission answered {response.status_code}: {response.text}")
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(32) as pool:
        latencies = list(pool.map(submit, meters))
    accepted = time.perf_counter() - started
    while True:
        with billing() as session:
            done = session.scalar(select(func.count()).select_from(MeteredConsumption)
                                  .where(MeteredConsumption.contract.in_(contracts)))
        if done == len(meters):
            break
        if time.perf_counter() - started > 120:
            raise RuntimeError(f"billing applied only {done} of {len(meters)} readings")
        time.sleep(0.05)
    applied = time.perf_counter() - started
    return {**percentiles(latencies), "submissions": len(meters),
            "accepted_per_s": round(len(meters) / accepted, 1), "end_to_end_per_s": round(len(meters) / applied, 1)}


def history_ten_years(gateway: str, percentiles: Any, timed: Any, n: int) -> dict[str, Any]:
    """Consumption by month over ten years (120 readings) through the gateway, sequentially."""
    [meter] = _meters_with_history(1, 10)
    headers = {"Authorization": f"Bearer {mint_token({meter.contract: 'owner'}, ttl=300)}"}
    session = requests.Session()
    url = f"{gateway}/api/v1/contracts/{meter.contract}/consumption"
    query = {"period_from": "2016-10-01", "period_to": "2026-10-01", "group_by": "month"}

    def read() -> None:
        response = session.get(url, params=query, headers=headers, timeout=10)
        if response.status_code != 200 or len(response.json()["items"]) != 120:
            raise RuntimeError(f"history answered {response.status_code}")

    return percentiles(timed(read, n))
