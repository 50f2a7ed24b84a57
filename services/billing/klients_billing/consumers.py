"""What billing does with other services' events (idempotent: each event id takes effect once)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.orm import Session

from klients_common.db import as_utc
from klients_common.outbox import first_delivery

from .models import MeteredConsumption, processed_events

log = logging.getLogger(__name__)

@cache
def _upsert() -> Any:
    """The upsert of ``record_reading``, built once. Written out: SQLAlchemy caches no compiled form of its
    dialects' ``on_conflict`` inserts and compiled one for every event; the same SQL runs on PostgreSQL and
    SQLite, and the typed parameters are converted as the table's columns would be."""
    table = MeteredConsumption.__table__
    return text(
        "INSERT INTO metered_consumption (contract, meter, period, reading_id, consumption_m3, consumption_kwh, "
        "read_on, source, submitted_at) VALUES (:contract, :meter, :period, :reading_id, :consumption_m3, "
        ":consumption_kwh, :read_on, :source, :submitted_at) "
        "ON CONFLICT (contract, meter, period) DO UPDATE SET reading_id = excluded.reading_id, "
        "consumption_m3 = excluded.consumption_m3, consumption_kwh = excluded.consumption_kwh, "
        "read_on = excluded.read_on, source = excluded.source, submitted_at = excluded.submitted_at "
        "WHERE metered_consumption.submitted_at < excluded.submitted_at OR metered_consumption.reading_id = :replaces"
    ).bindparams(*[bindparam(column.name, type_=column.type) for column in table.c if column.name != "id"],
                 bindparam("replaces", type_=Integer()))


def record_reading(*, db_session: Session, payload: dict[str, Any]) -> bool:
    """Apply a ``reading_accepted`` event once; return False for a repeat delivery or an older reading.

    One upsert on (contract, meter, period): the reading goes in, or replaces the one held when it is newer
    or names it as the one it replaces; otherwise the newer one held stays."""
    if not first_delivery(db_session, processed_events, payload["event_id"], "reading_accepted"):
        return False
    read_on = date.fromisoformat(payload["read_on"])
    values = {"contract": payload["contract"], "meter": payload["meter"],
              "period": payload.get("period") or f"{read_on:%Y-%m}", "reading_id": payload["reading_id"],
              "consumption_m3": payload["consumption_m3"],
              "consumption_kwh": Decimal(str(payload.get("consumption_kwh") or 0)), "read_on": read_on,
              "source": payload["source"],
              "submitted_at": as_utc(datetime.fromisoformat(payload["submitted_at"])).astimezone(UTC)}
    applied = db_session.execute(_upsert(),
                                 {**values, "replaces": payload.get("replaces")}).rowcount
    if not applied:
        log.info("reading %s is older than the one billing holds for %s %s: kept the newer",
                 payload["reading_id"], payload["contract"], values["period"])
    return True
