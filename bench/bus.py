"""The bus benchmark: readings per second from metering's outbox to billing with authenticated events, and
what the authentication (the broker-validated user id checked against the catalogue's owner, and the JSON
Schema check) costs per event.

The flow is the production one: reading_accepted rows written to metering's outbox (as metering writes them
when it accepts a reading), relayed by metering's service, applied by billing's (and by notifications' and
identity's, which run too). The check cannot be turned off in a deployed system, so "without the check" is
the same flow's billing CPU per event less the check's own CPU per event, measured on the same payloads in
this process; the share is that cost over billing's CPU per event (server CPU from /proc).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from klients_billing.models import MeteredConsumption
from klients_common.db import make_engine, transaction
from klients_common.events import check_payload, check_producer
from klients_common.outbox import enqueue
from klients_metering.models import outbox
from tests.support.stack import wait_until

EVENTS = int(os.environ.get("BENCH_BUS_EVENTS", "3000"))
TICKS = os.sysconf("SC_CLK_TCK")


def _payload(prefix: str, i: int, now: datetime) -> dict[str, Any]:
    return {"contract": f"{prefix}-{i:05d}", "meter": f"M-{i:05d}", "reading_id": i + 1, "value": 100 + i,
            "read_on": now.date().isoformat(), "period": f"{now:%Y-%m}", "source": "customer",
            "consumption_m3": 1 + i % 50, "consumption_kwh": f"{(1 + i % 50) * 10.5:.3f}", "rollover": False,
            "flagged": False, "submitted_by": f"bench-{i}", "submitted_role": "owner",
            "submitted_at": now.isoformat(), "replaces": None}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children that were waited for."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICKS


def check_cost(n: int = 20000) -> float:
    """Return the seconds of CPU one event's authentication takes (producer check and schema check)."""
    now = datetime.now(UTC)
    payloads = [{**_payload("C", i, now), "event_id": str(uuid.uuid4())} for i in range(1000)]
    prefix = os.environ["BUS_USER_PREFIX"]
    started = time.process_time()
    for i in range(n):
        check_producer("reading_accepted", "metering", prefix + "metering", prefix)
        check_payload("reading_accepted", payloads[i % len(payloads)])
    return (time.process_time() - started) / n


def readings_flow(billing_pid: int) -> dict[str, Any]:
    """Write EVENTS readings to metering's outbox; time until billing has applied every one."""
    prefix = f"B{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    billing = sessionmaker(make_engine(os.environ["BILLING_DATABASE_URL"]))
    cpu_before = _cpu_seconds(billing_pid)
    started = time.perf_counter()
    with transaction(sessionmaker(make_engine(os.environ["METERING_DATABASE_URL"]))) as session:
        for i in range(EVENTS):
            enqueue(session, outbox, "reading_accepted", _payload(prefix, i, now))

    def applied() -> int:
        with billing() as session:
            return session.scalar(select(func.count()).select_from(MeteredConsumption).where(
                MeteredConsumption.contract.like(f"{prefix}-%")))

    wait_until(f"{EVENTS} readings applied by billing", lambda: applied() >= EVENTS, timeout=600)
    elapsed = time.perf_counter() - started
    billing_cpu = (_cpu_seconds(billing_pid) - cpu_before) / EVENTS
    check = check_cost()
    return {"events": EVENTS, "seconds": round(elapsed, 2), "requests_per_s": round(EVENTS / elapsed, 1),
            "billing_cpu_ms_per_event": round(billing_cpu * 1000, 3),
            "check_cpu_ms_per_event": round(check * 1000, 4),
            "check_share_of_billing_cpu_pct": round(100 * check / billing_cpu, 2),
            "billing_cpu_bound_per_s_with_check": round(1 / billing_cpu, 1),
            "billing_cpu_bound_per_s_without_check": round(1 / (billing_cpu - check), 1)}
