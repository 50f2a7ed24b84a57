"""Events that are never lost and never applied twice: a transactional outbox and an inbox.

Producer side: ``enqueue`` writes the event into the service's ``outbox`` table in the same database
transaction as the change it announces; ``relay`` publishes unpublished rows and marks them (``OutboxRelay``:
a thread of the service woken by the worker that wrote the event, and every few seconds anyway). A crash
between commit and publish only delays the event. On PostgreSQL the relay takes rows with ``FOR UPDATE SKIP
LOCKED``, so several instances can relay side by side without publishing a row twice at once.

Consumer side: publishing is at-least-once (a relay can die after publishing and before marking), so
every consumer records the event id in its ``processed_events`` table in the same transaction as its
effect; ``first_delivery`` says whether this delivery is the first.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, bindparam, insert, select, text, update
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


Publish = Callable[[list[tuple[str, dict[str, Any]]]], None]  # (event type, payload) pairs, confirmed


def relay(session: Session, outbox: Table, publish: Publish, limit: int = 100) -> int:
    """Publish every unpublished event, in order, ``limit`` per transaction; return how many. (One batch per
    timer tick would drain a backlog at ``limit`` per tick.)"""
    total = 0
    while True:
        published = _relay_batch(session, outbox, publish, limit)
        total += published
        if published < limit:
            return total


def _relay_batch(session: Session, outbox: Table, publish: Publish, limit: int) -> int:
    """Take up to ``limit`` unpublished rows (locked: another relay skips them), publish them all, and only
    once the broker has confirmed every one mark them published, in one statement."""
    rows = session.execute(
        select(outbox.c.id, outbox.c.event_type, outbox.c.payload)
        .where(outbox.c.published_at.is_(None)).order_by(outbox.c.created_at).limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if rows:
        publish([(row.event_type, row.payload) for row in rows])
        session.execute(update(outbox).where(outbox.c.id.in_([row.id for row in rows]))
                        .values(published_at=datetime.now(UTC)))
    session.commit()
    return len(rows)


class OutboxRelay(DependencyProvider):
    """The service's outbox relay, on a green thread of its own: ``self.relay.soon()`` in a worker (after its
    commit) wakes it, and it drains the outbox — every due row published in batches with one wait for the
    broker's confirms each (``klients_common.bus.BatchPublisher``), marked in one statement — while the
    worker answers; every ``interval`` seconds it looks anyway (events left by a failed publish, by a crash,
    or written by another process). Nothing is lost on a restart: the row was committed with the change it
    announces and stays unpublished until the broker confirmed it. ``self.relay.now()`` waits for a drain
    that began after the call (for a change that must be announced before the caller hears back)."""

    def __init__(self, outbox: Table, interval: float = 2.0, limit: int = 100) -> None:
        self.outbox = outbox
        self.interval = interval
        self.limit = limit

    def setup(self) -> None:
        """Build the publisher for the component's exchange."""
        from .bus import BatchPublisher, component_of

        self.publisher = BatchPublisher(self.container.config["AMQP_URI"],
                                        component_of(self.container.service_name))
        self.wake = threading.Event()
        self.stopping = False
        self.drains = 0  # drains begun
        self.drained = threading.Condition()
        self.done = 0  # drains finished (successfully or not)

    def start(self) -> None:
        """Start the relay's thread, on the service's database."""
        from .nameko_db import Database

        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.session_factory = database.session_factory
        self.container.spawn_managed_thread(self._run, identifier="outbox-relay")

    def stop(self) -> None:
        """Let the thread end and close the broker connection."""
        self.stopping = True
        self.wake.set()
        self.publisher.close()

    def kill(self) -> None:
        """As ``stop``."""
        self.stop()

    def _run(self) -> None:
        while not self.stopping:
            self.wake.wait(self.interval)
            self.wake.clear()
            if self.stopping:
                return
            self.drains += 1
            try:
                with self.session_factory() as session:
                    relay(session, self.outbox, self.publisher.publish, self.limit)
            except Exception:
                log.warning("outbox relay failed; trying again in %g s", self.interval, exc_info=True)
            finally:
                with self.drained:
                    self.done = self.drains
                    self.drained.notify_all()

    def soon(self) -> None:
        """Wake the relay (it drains once this worker yields)."""
        self.wake.set()

    def now(self, timeout: float = 10.0) -> None:
        """Wake the relay and wait until a drain begun after this call has ended."""
        wanted = self.drains + 1
        self.wake.set()
        with self.drained:
            self.drained.wait_for(lambda: self.done >= wanted, timeout)

    def get_dependency(self, worker_ctx: Any) -> OutboxRelay:
        """Give workers the relay itself (``soon``, ``now``)."""
        return self


@cache
def _record_processed(processed: Table) -> Any:
    """The statement of ``first_delivery``, built once. Written out: SQLAlchemy caches no compiled form of its
    dialects' ``on_conflict`` inserts and compiled one for every event; the same SQL runs on PostgreSQL and
    SQLite, and the typed parameters are converted as the table's columns would be."""
    assert processed.name == "processed_events"
    return text("INSERT INTO processed_events (event_id, event_type, processed_at) "
                "VALUES (:event_id, :event_type, :processed_at) ON CONFLICT (event_id) DO NOTHING").bindparams(
        bindparam("processed_at", type_=processed.c.processed_at.type))


def first_delivery(session: Session, processed: Table, event_id: str, event_type: str) -> bool:
    """Record ``event_id`` as processed in this transaction; False if it already was.

    One statement, ``INSERT … ON CONFLICT DO NOTHING`` (PostgreSQL and SQLite): no savepoint around an insert
    that may fail; a delivery of the same event running at the same time waits for this transaction and then
    inserts nothing."""
    inserted = session.execute(_record_processed(processed), {
        "event_id": event_id, "event_type": event_type, "processed_at": datetime.now(UTC)}).rowcount
    if not inserted:
        log.info("event %s (%s) already processed: skipped", event_id, event_type)
    return bool(inserted)
