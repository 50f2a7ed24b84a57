"""Retries with back-off, and dead letters, for event handlers.

A temporary failure (the SMTP server down, a 4xx answer) sends the event to a delay queue of the
handler's own (``<queue>.retry-<n>``, durable, with a message TTL) that dead-letters it back to the
handler's queue when the delay is over: 5 s, 30 s, 2 min, 10 min, 1 h. The attempt number travels in
the ``nameko.attempt`` header. After the last attempt, or on a permanent failure (5xx, malformed
event), the event is stored as a dead letter for operators, and the message is acknowledged so the
queue keeps flowing.
"""

from __future__ import annotations

import smtplib
import threading
from datetime import UTC, datetime
from typing import Any

from kombu import Connection, Producer, Queue
from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session

from .models import DeadLetter

BACKOFF_SECONDS = (5, 30, 120, 600, 3600)
ATTEMPT_HEADER = "nameko.attempt"


def handler_queue(worker_ctx: Any) -> str:
    """Return the queue nameko consumes the worker's event from (service-pool handlers)."""
    entrypoint = worker_ctx.entrypoint
    return (f"evt-{entrypoint.source_service}-{entrypoint.event_type}--"
            f"{worker_ctx.service_name}.{entrypoint.method_name}")


def is_temporary(error: BaseException) -> bool:
    """Return whether trying again later may help (no answer, or a 4xx answer)."""
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    return isinstance(error, OSError | smtplib.SMTPServerDisconnected | smtplib.SMTPConnectError)


def publish_to_queue(amqp_uri: str, queue: str, payload: dict[str, Any], headers: dict[str, Any],
                     queue_arguments: dict[str, Any] | None = None) -> None:
    """Publish ``payload`` straight to ``queue`` (declared durable, with ``queue_arguments``)."""
    with Connection(amqp_uri) as connection:
        target = Queue(queue, durable=True, auto_delete=False, queue_arguments=queue_arguments)
        Producer(connection).publish(payload, exchange="", routing_key=queue, serializer="json", headers=headers,
                                     delivery_mode=2, declare=[target], retry=True)


class Retrier:
    """What a worker uses to try again later or to give up."""

    def __init__(self, amqp_uri: str, worker_ctx: Any, lock: threading.Lock) -> None:
        self.amqp_uri = amqp_uri
        self.worker_ctx = worker_ctx
        self.lock = lock

    @property
    def attempt(self) -> int:
        """Return which attempt this is (0 for the first delivery)."""
        return int(self.worker_ctx.data.get("attempt") or 0)

    def later(self, payload: dict[str, Any]) -> bool:
        """Schedule another attempt after the next back-off step; False when none is left."""
        level = self.attempt
        if level >= len(BACKOFF_SECONDS):
            return False
        queue = handler_queue(self.worker_ctx)
        delay_queue = f"{queue}.retry-{level}"
        arguments = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue,
                     "x-message-ttl": BACKOFF_SECONDS[level] * 1000}
        with self.lock:
            publish_to_queue(self.amqp_uri, delay_queue, payload, {ATTEMPT_HEADER: level + 1}, arguments)
        return True

    def dead_letter(self, session: Session, payload: Any, reason: str, error: BaseException | str | None) -> None:
        """Keep the event for operators (committed)."""
        event_id = payload.get("event_id") if isinstance(payload, dict) else None
        session.add(DeadLetter(event_id=event_id if isinstance(event_id, str) else None,
                               queue=handler_queue(self.worker_ctx),
                               payload=payload if isinstance(payload, dict) else {"raw": repr(payload)[:2000]},
                               reason=reason, error=type(error).__name__ if isinstance(error, BaseException) else error,
                               created_at=datetime.now(UTC)))
        session.commit()


class Redelivery(DependencyProvider):
    """Gives each worker a Retrier."""

    def setup(self) -> None:
        """Remember the broker."""
        self.amqp_uri = self.container.config["AMQP_URI"]
        self.lock = threading.Lock()

    def get_dependency(self, worker_ctx: Any) -> Retrier:
        """Return the worker's retrier."""
        return Retrier(self.amqp_uri, worker_ctx, self.lock)


def resend(session: Session, amqp_uri: str, letter: DeadLetter) -> None:
    """Put a dead letter back on its handler's queue as a first attempt."""
    publish_to_queue(amqp_uri, letter.queue, dict(letter.payload), {ATTEMPT_HEADER: 0})
    letter.resent_at = datetime.now(UTC)
    session.commit()
