"""Events that are never lost and never applied twice: a transactional outbox and an inbox.

Producer side: ``enqueue`` writes the event into the service's ``outbox`` table in the same database
transaction as the change it announces; ``relay`` publishes unpublished rows and marks them (a nameko
timer calls it, and the worker that wrote the event calls it at once for low latency). A crash between
commit and publish only delays the event. On PostgreSQL the relay takes rows with ``FOR UPDATE SKIP
LOCKED``, so several instances can relay side by side without publishing a row twice at once.

Consumer side: publishing is at-least-once (a relay can die after publishing and before marking), so
every consumer records the event id in its ``processed_events`` table in the same transaction as its
effect; ``first_delivery`` says whether this delivery is the first.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .events import check_payload

log = logging.getLogger(__name__)


def outbox_table(metadata: MetaData) -> Table:
    """Return the ``outbox`` table in ``metadata``."""
    return Table(
        "outbox", metadata,
        Column("id", String(36), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("payload", JSON, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("published_at", DateTime(timezone=True), nullable=True, index=True),
    )


def processed_events_table(metadata: MetaData) -> Table:
    """Return the ``processed_events`` table in ``metadata``."""
    return Table(
        "processed_events", metadata,
        Column("event_id", String(36), primary_key=True),
        Column("event_type", String(64), nullable=False),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


def enqueue(session: Session, outbox: Table, event_type: str, payload: dict[str, Any]) -> str:
    """Add an event to the outbox in the session's transaction; return its id (also in the payload).

    The payload must match the event's schema in the catalogue (``klients_common.events``): a producer
    cannot emit a malformed event, and the mistake surfaces in the transaction that made it."""
    event_id = str(uuid.uuid4())
    payload = {**payload, "event_id": event_id}
    check_payload(event_type, payload)
    session.execute(insert(outbox).values(id=event_id, event_type=event_type, payload=payload,
                                          created_at=datetime.now(UTC)))
    return event_id


def relay(session: Session, outbox: Table, dispatch: Callable[[str, dict[str, Any]], None], limit: int = 100) -> int:
    """Publish every unpublished event, in order, ``limit`` per transaction; return how many. (One batch per
    timer tick would drain a backlog at ``limit`` per tick.)"""
    total = 0
    while True:
        published = _relay_batch(session, outbox, dispatch, limit)
        total += published
        if published < limit:
            return total


def _relay_batch(session: Session, outbox: Table, dispatch: Callable[[str, dict[str, Any]], None], limit: int) -> int:
    rows = session.execute(
        select(outbox.c.id, outbox.c.event_type, outbox.c.payload)
        .where(outbox.c.published_at.is_(None)).order_by(outbox.c.created_at).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        dispatch(row.event_type, row.payload)
        session.execute(update(outbox).where(outbox.c.id == row.id).values(published_at=datetime.now(UTC)))
    session.commit()
    return len(rows)


def relay_quietly(session: Session, outbox: Table, dispatch: Callable[[str, dict[str, Any]], None]) -> None:
    """Publish what a worker just wrote; if that fails, the events wait in the outbox for the timer."""
    try:
        relay(session, outbox, dispatch)
    except Exception:
        log.warning("outbox relay failed; the timer will retry", exc_info=True)
        session.rollback()


def first_delivery(session: Session, processed: Table, event_id: str, event_type: str) -> bool:
    """Record ``event_id`` as processed in this transaction; False if it already was."""
    try:
        with session.begin_nested():
            session.execute(insert(processed).values(event_id=event_id, event_type=event_type,
                                                     processed_at=datetime.now(UTC)))
    except IntegrityError:
        log.info("event %s (%s) already processed: skipped", event_id, event_type)
        return False
    return True
