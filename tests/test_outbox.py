"""The outbox relay publishes what is due as a batch: every row published, the broker's confirms waited for
once, and the rows marked published together (docs/architecture.md, "Events: outbox and inbox"); each
event still takes effect once at its consumer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from klients_billing.models import MeteredConsumption
from klients_common.db import transaction
from klients_common.outbox import enqueue
from klients_metering.models import outbox
from tests.support.stack import wait_until

EVENTS = 30


def test_events_written_together_are_published_as_one_batch_and_applied_once(metering_sessions,
                                                                                billing_sessions):
    prefix = f"OB{uuid.uuid4().hex[:6].upper()}"
    now = datetime.now(UTC)
    payloads = [{"contract": f"{prefix}-{i:02d}", "meter": f"M-{prefix}-{i:02d}", "reading_id": i + 1,
                 "value": 100 + i, "read_on": now.date().isoformat(), "period": f"{now:%Y-%m}", "source": "operator",
                 "consumption_m3": 5, "consumption_kwh": "52.750", "rollover": False, "flagged": False,
                 "submitted_by": None, "submitted_role": "operator", "submitted_at": now.isoformat(),
                 "replaces": None} for i in range(EVENTS)]
    with transaction(metering_sessions) as session:  # as another process would: nobody wakes the relay
        ids = [enqueue(session, outbox, "reading_accepted", p) for p in payloads]

    def billed() -> int:
        with billing_sessions() as session:
            return session.scalar(select(func.count()).select_from(MeteredConsumption).where(
                MeteredConsumption.contract.like(f"{prefix}-%")))

    wait_until("billing to apply every event of the batch", lambda: billed() == EVENTS, timeout=30)
    with metering_sessions() as session:
        marked = session.execute(select(outbox.c.published_at).where(outbox.c.id.in_(ids))).scalars().all()
    assert len(marked) == EVENTS and None not in marked
    assert len(set(marked)) == 1, "the batch is marked published in one statement, once the broker confirmed it"
    assert billed() == EVENTS
