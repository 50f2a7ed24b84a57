"""What billing does with other services' events (idempotent: each event id takes effect once)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from klients_common.db import as_utc
from klients_common.outbox import first_delivery

from .models import MeteredConsumption, processed_events

log = logging.getLogger(__name__)

def record_reading(*, db_session: Session, payload: dict[str, Any]) -> bool:
    """Apply a ``reading_accepted`` event once; return False for a repeat delivery or an older reading."""
    if not first_delivery(db_session, processed_events, payload["event_id"], "reading_accepted"):
        return False
    read_on = date.fromisoformat(payload["read_on"])
    period = payload.get("period") or f"{read_on:%Y-%m}"
    submitted_at = as_utc(datetime.fromisoformat(payload["submitted_at"]))
    kwh = Decimal(str(payload.get("consumption_kwh") or 0))
    row = db_session.scalar(select(MeteredConsumption).where(
        MeteredConsumption.contract == payload["contract"], MeteredConsumption.meter == payload["meter"],
        MeteredConsumption.period == period))
    if row is None:
        db_session.add(MeteredConsumption(
            contract=payload["contract"], meter=payload["meter"], period=period, reading_id=payload["reading_id"],
            consumption_m3=payload["consumption_m3"], consumption_kwh=kwh, read_on=read_on,
            source=payload["source"], submitted_at=submitted_at))
    elif as_utc(row.submitted_at) < submitted_at or row.reading_id == payload.get("replaces"):
        row.reading_id = payload["reading_id"]
        row.consumption_m3 = payload["consumption_m3"]
        row.consumption_kwh = kwh
        row.read_on = read_on
        row.source = payload["source"]
        row.submitted_at = submitted_at
    else:
        log.info("reading %s is older than the one billing holds for %s %s: kept the newer",
                 payload["reading_id"], payload["contract"], period)
    return True
