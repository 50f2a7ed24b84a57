"""Notifications benchmark: e-mails per second delivered to the local SMTP server from a burst of events."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kombu import Connection, Exchange
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine
from klients_notifications.models import Delivery
from tests.support.stack import Stack, bus_uri, wait_until

EVENTS = int(os.environ.get("BENCH_MAIL_EVENTS", "5000"))


def burst() -> dict[str, Any]:
    """Publish EVENTS password-reset events at once; time until every mail is with the SMTP server."""
    smtp = Stack()
    smtp.start_smtp(int(os.environ["SMTP_PORT"]), Path(tempfile.mkdtemp(prefix="bench-mail-")))
    sessions = sessionmaker(make_engine(os.environ["NOTIFICATIONS_DATABASE_URL"]))
    marker = f"bench-{uuid.uuid4().hex[:8]}"
    expires = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    try:
        started = time.perf_counter()
        with Connection(bus_uri("identity")) as conn:  # as identity publishes them, with its validated user id
            producer = conn.Producer(serializer="json")
            exchange = Exchange("identity.events", type="topic", durable=True, no_declare=True)
            for n in range(EVENTS):
                producer.publish({"event_id": str(uuid.uuid4()), "to": f"{marker}-{n}@example.lv",
                                  "link": f"http://127.0.0.1:8001/x/{n}", "expires_at": expires, "lang": "lv"},
                                 exchange=exchange, routing_key="password_reset_requested", delivery_mode=2,
                                 user_id=os.environ["BUS_USER_PREFIX"] + "identity")
        published = time.perf_counter() - started

        def sent() -> int:
            with sessions() as session:
                return session.scalar(select(func.count()).select_from(Delivery).where(
                    Delivery.recipient.like(f"{marker}-%"), Delivery.status == "sent"))

        wait_until(f"{EVENTS} mails delivered", lambda: sent() >= EVENTS, timeout=600)
        elapsed = time.perf_counter() - started
    finally:
        smtp.stop_all()
    return {"events": EVENTS, "publish_seconds": round(published, 1), "seconds": round(elapsed, 1),
            "requests_per_s": round(EVENTS / elapsed, 1)}
