"""What billing does with other services' events (idempotent: each event id takes effect once)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

from sqlalchemy import bindparam, or_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from klients_common.db import as_utc
from klients_common.outbox import first_delivery

from .models import MeteredConsumption, processed_events

log = logging.getLogger(__name__)

@cache
def _upsert(dialect: str) -> Any:
    """The prebuilt upsert of ``record_reading`` (parameters at execution: compiled once, not per event)."""
    table = MeteredConsumption.__table__
    statement = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    newer = or_(table.c.submitted_at < statement.excluded.submitted_at, table.c.reading_id == bindparam("replaces"))
    return statement.on_conflict_do_update(
        index_elements=[table.c.contract, table.c.meter, table.c.period],
        set_={name: statement.excluded[name] for name in ("reading_id", "consumption_m3", "consumption_kwh",
                                                           "read_on", "source", "submitted_at")},
        where=newer)


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
    applied = db_session.execute(_upsert(db_session.get_bind().dialect.name),
                                 {**values, "replaces": payload.get("replaces")}).rowcount
    if not applied:
        log.info("reading %s is older than the one billing holds for %s %s: kept the newer",
                 payload["reading_id"], payload["contract"], values["period"])
    return True
