"""Metering benchmarks: end-to-end reading submissions per second (gateway → metering → the
``reading_accepted`` event applied by billing) and consumption-history latency over ten years."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from system import mint_token

from klients_billing.models import MeteredConsumption
from klients_common.db import make_engine
from klients_metering.models import Meter, Reading

METERS = int(os.environ.get("BENCH_METERS", "1500"))


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


def submissions_end_to_end(gateway: str, stack: Any) -> dict[str, Any]:
    """Submit one reading for each of METERS contracts from 32 wrk connections; the rate until billing holds
    them all, and the servers' CPU per submission over the whole flow (gateway, metering, the event's consumers:
    billing, notifications, identity; PostgreSQL, RabbitMQ)."""
    import wrk

    meters = _meters_with_history(METERS, 1)
    items = "\n".join(f"/api/v1/contracts/{m.contract}/meters/{m.serial_number}/readings "
                       f"{mint_token({m.contract: 'owner'}, ttl=900)} {{\"value\": {80 * 11 + 90}}}" for m in meters)
    billing = sessionmaker(make_engine(os.environ["BILLING_DATABASE_URL"]))
    contracts = [m.contract for m in meters]
    consumers = ("gateway", "metering", "billing", "notifications", "identity-service")  # all apply the event
    cpu = wrk.Cpu({**{name: [stack.procs[name].pid] for name in consumers},
                   "postgresql": wrk.postgres(), "rabbitmq": wrk.rabbitmq()}).start()
    metering = sessionmaker(make_engine(os.environ["METERING_DATABASE_URL"]))
    ids = [m.id for m in meters]
    marks: dict[str, float] = {}
    since = datetime.now(UTC)  # the history's readings were submitted in the past

    def count(factory: Any, query: Any) -> int:
        with factory() as session:
            return int(session.scalar(query))

    def all_applied() -> bool:
        now = time.perf_counter()
        if now - marks.get("polled", 0) < 0.1:
            return False
        marks["polled"] = now
        if "accepted" not in marks and count(metering, select(func.count()).select_from(Reading).where(
                Reading.meter_id.in_(ids), Reading.submitted_at >= since)) \
                >= len(meters):
            marks["accepted"] = time.perf_counter()
        return "accepted" in marks and count(billing, select(func.count()).select_from(MeteredConsumption).where(
            MeteredConsumption.contract.in_(contracts))) >= len(meters)

    started = time.perf_counter()
    accepted = wrk.run(gateway, "submit", connections=32, threads=32, seconds=120, files={"BENCH_ITEMS": items},
                       timeout="30s", until=all_applied)
    applied = time.perf_counter() - started
    cpu.stop()
    if accepted["ok"] < len(meters) or "accepted" not in marks:
        raise RuntimeError(f"only {accepted['ok']} of {len(meters)} submissions answered within 120 s")
    return {**accepted, "submissions": len(meters),
            "accepted_per_s": round(len(meters) / (marks["accepted"] - started), 1),
            "end_to_end_per_s": round(len(meters) / applied, 1), **cpu.ms_per(len(meters))}


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
