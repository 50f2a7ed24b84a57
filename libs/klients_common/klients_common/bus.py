"""The message bus as a trust boundary: broker identities, topology as code, authenticated event handling,
bounded redelivery and dead letters, in one place for every component.

Broker identities. Each component (identity, billing, metering, notifications, gateway) connects as its own
RabbitMQ user ``<BUS_USER_PREFIX><component>`` (``klients-billing`` …). ``permissions`` gives it exactly:
declare and consume its own queues, publish to its own ``<component>.events`` exchange (topic permissions:
only the event types it owns, see ``klients_common.events``) and to the RPC exchange, bind only to the event
types it consumes. Nobody may publish to the default exchange (straight into a queue).

Authenticated events. ``BatchPublisher`` (what ``klients_common.outbox.OutboxRelay`` publishes with) stamps
every event with the connection's user as the AMQP ``user_id`` property, which RabbitMQ validates (a message
whose ``user_id`` differs from the connection's user is refused by the broker). ``handler`` (use it instead of
nameko's ``event_handler``) applies an event only if that ``user_id`` is the broker identity of the component
that owns the event type and the payload matches the
event's schema; anything else is dead-lettered with a log line and never reaches the service's method.

Topology as code. ``declare`` creates a component's exchanges, queues (quorum queues with a delivery limit and
a dead-letter exchange), bindings and dead-letter queue, idempotently; every component's ``migrate`` runs it
and ``klients-bus setup`` runs it for all components, so an event published before its consumer ever ran
waits in the consumer's queue.

Bounded failure. A handler that fails with a transient error (database or SMTP unreachable, another service
down) is retried in place with back-off (1 s doubling to 60 s) for up to ``BUS_RETRY_SECONDS`` without giving
the message back; any other failure gives it back to the queue, and RabbitMQ dead-letters it after
``BUS_DELIVERY_LIMIT`` deliveries into ``<component>.dead-letters``. ``Undeliverable`` (e.g. an address the
mail server refuses for good) dead-letters at once. ``dead_letters`` and ``resend`` (the
``klients-<component> dead-letters`` / ``resend`` commands) list and put back what is there; a message put
back keeps its original producer's validated ``user_id``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import smtplib
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from amqp.exceptions import AMQPError
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from nameko.events import BROADCAST, EventHandler
from nameko.messaging import Consumer

from .events import CATALOGUE, EventRejected, check_payload, check_producer, events_of
from .rpc import broker_user

log = logging.getLogger(__name__)

RPC_EXCHANGE = "nameko-rpc"
# Every component that connects to the broker, with its nameko services (their names appear in queue names).
# The portal is not here: it talks only to the gateway's public API.
SERVICES: dict[str, tuple[str, ...]] = {
    "identity": ("identity", "identity_keycloak_sync"), "billing": ("billing",), "metering": ("metering",),
    "notifications": ("notifications",), "gateway": (),
}
# What each nameko service consumes, from the catalogue: (producer, event type, service, method, broadcast).
SUBSCRIPTIONS: list[tuple[str, str, str, str, bool]] = [
    (event.producer, event.name, sub.service, sub.method, sub.broadcast)
    for event in CATALOGUE.values() for sub in event.consumers]


class Transient(Exception):
    """Raised by a handler when something it needs is unavailable for now (e.g. Keycloak): the event is
    tried again in place with back-off, like a database or SMTP outage."""


class Undeliverable(Exception):
    """Raised by a handler for an event that can never be applied (e.g. an address refused for good): the
    event is dead-lettered at once instead of being tried again."""


# --- names ------------------------------------------------------------------------------------------

def component_of(service: str) -> str:
    """Return the component a nameko service belongs to."""
    for component, services in SERVICES.items():
        if service in services:
            return component
    raise KeyError(f"no component runs the nameko service {service!r}")


def events_exchange(component: str) -> str:
    """Return the exchange ``component`` publishes its events on."""
    return f"{component}.events"


def dead_letter_exchange(component: str) -> str:
    """Return the exchange that takes ``component``'s dead letters."""
    return f"{component}.dead-letter"


def dead_letter_queue(component: str) -> str:
    """Return the queue where ``component``'s dead letters wait for an operator."""
    return f"{component}.dead-letters"


def handler_queue(source: str, event_type: str, service: str, method: str) -> str:
    """Return the durable queue of a service-pool handler (nameko's naming)."""
    return f"evt-{source}-{event_type}--{service}.{method}"


def queue_arguments(component: str, queue: str, delivery_limit: int) -> dict[str, Any]:
    """Return the arguments of a durable event queue: a quorum queue that dead-letters to its component's
    dead-letter exchange after ``delivery_limit`` deliveries, keeping its own name as routing key (so a
    dead letter put back finds its way home)."""
    return {"x-queue-type": "quorum", "x-delivery-limit": delivery_limit,
            "x-dead-letter-exchange": dead_letter_exchange(component), "x-dead-letter-routing-key": queue}


# --- permissions ------------------------------------------------------------------------------------

def _alt(names: Iterable[str]) -> str:
    """A regex group matching exactly one of ``names`` (none: matches nothing)."""
    escaped = sorted(re.escape(name) for name in names)
    return "(" + "|".join(escaped) + ")" if escaped else "(?!)"


def _reply_queue(user: str) -> str:
    return rf"rpc\.reply-{re.escape(user)}-[0-9a-f-]{{36}}"


def _exact(names: Iterable[str]) -> str:
    return f"^{_alt(names)}$"


def permissions(component: str, user: str) -> dict[str, str]:
    """Return RabbitMQ's configure / write / read patterns for ``component`` connecting as ``user``."""
    services = SERVICES[component]
    queues = [_reply_queue(user)]  # what it declares, binds (write) and consumes (read)
    if services:
        queues += [rf"evt-[a-z_]+-[a-z_]+--{_alt(services)}\.[a-z_]+(-[0-9a-f]{{32}})?", rf"rpc-{_alt(services)}",
                   re.escape(dead_letter_queue(component))]
    own_events = [re.escape(events_exchange(component))] if events_of(component) else []
    # RabbitMQ asks for write on a queue's dead-letter exchange to declare the queue, and read on it to bind.
    dead_letter = [re.escape(dead_letter_exchange(component))] if services else []
    sources = [re.escape(events_exchange(source)) for source in
               sorted({source for source, _, service, _, _ in SUBSCRIPTIONS if service in services})]
    rpc = [re.escape(RPC_EXCHANGE)]
    return {"configure": "^(" + "|".join(queues + own_events + dead_letter + rpc) + ")$",
            "write": "^(" + "|".join(queues + own_events + dead_letter + rpc) + ")$",
            "read": "^(" + "|".join(queues + dead_letter + sources + rpc) + ")$"}


def topic_permissions(component: str, user: str) -> list[dict[str, str]]:
    """Return topic permissions: publish only owned event types; bind only to consumed ones and to the
    component's own RPC routing keys."""
    services = SERVICES[component]
    consumed: dict[str, set[str]] = {}
    for source, event, service, _, _ in SUBSCRIPTIONS:
        if service in services:
            consumed.setdefault(source, set()).add(event)
    exchanges = sorted(set(consumed) | ({component} if events_of(component) else set()))
    out = [{"exchange": events_exchange(source), "write": _exact(events_of(component)) if source == component
            else "^$", "read": _exact(consumed.get(source, ()))} for source in exchanges]
    rpc_read = [rf"{_alt(services)}\.\*"] if services else []
    out.append({"exchange": RPC_EXCHANGE, "write": ".*",
                "read": "^(" + "|".join([*rpc_read, _reply_queue(user), "[0-9a-f-]{36}"]) + ")$"})
    return out


# --- topology ---------------------------------------------------------------------------------------

# Services that run only in some deployments: their queues are declared only where they run (a queue nobody
# consumes would grow without end).
OPTIONAL_SERVICES = {"identity_keycloak_sync": "PORTAL_TOKEN_ISSUER=keycloak"}


def topology(component: str, delivery_limit: int,
             optional: Iterable[str] = ()) -> tuple[list[Exchange], list[Queue]]:
    """Return the exchanges and durable queues ``component`` owns (queues carry their bindings);
    ``optional`` names the optional services (``OPTIONAL_SERVICES``) that run here."""
    exchanges: list[Exchange] = [Exchange(RPC_EXCHANGE, type="topic", durable=True)]
    if events_of(component):
        exchanges.append(Exchange(events_exchange(component), type="topic", durable=True))
    queues: list[Queue] = []
    services = SERVICES[component]
    if services:
        dlx = Exchange(dead_letter_exchange(component), type="fanout", durable=True)
        exchanges.append(dlx)
        # A classic queue, said outright (a broker whose default queue type is quorum would otherwise make it
        # one, count every browse as a delivery and, at RabbitMQ 4's default limit, send letters back by
        # itself). Rejecting a message from it dead-letters it to the default exchange, i.e. back home.
        queues.append(Queue(dead_letter_queue(component), exchange=dlx, durable=True,
                            queue_arguments={"x-queue-type": "classic", "x-dead-letter-exchange": ""}))
    for source, event, service, method, broadcast in SUBSCRIPTIONS:
        if service in OPTIONAL_SERVICES and service not in optional:
            continue
        if service in services and not broadcast:
            name = handler_queue(source, event, service, method)
            queues.append(Queue(name, exchange=Exchange(events_exchange(source), type="topic", durable=True,
                                                        no_declare=True),
                                routing_key=event, durable=True,
                                queue_arguments=queue_arguments(component, name, delivery_limit)))
    return exchanges, queues


def declare(amqp_uri: str, component: str, delivery_limit: int, *, optional: Iterable[str] = ()) -> list[str]:
    """Declare ``component``'s exchanges, queues and bindings (idempotent); return the queue names.

    The exchanges of the components it listens to must exist (``klients-bus setup`` declares them all); a
    component's own credential may not declare another's exchange."""
    exchanges, queues = topology(component, delivery_limit, optional)
    with Connection(amqp_uri, connect_timeout=10) as connection:
        channel = connection.channel()
        for exchange in exchanges:
            exchange(channel).declare()
        for queue in queues:
            queue(channel).declare()
    return [queue.name for queue in queues]


# --- producing ----------------------------------------------------------------------------------------

class BatchPublisher:
    """Publishes a component's events a batch at a time: every message of the batch goes out on one channel in
    confirm mode, then the publisher waits once for the broker's confirms of all of them (a confirm per
    message, waited for one by one, cost a broker round trip and a quorum-queue commit per event). Each
    message is persistent, JSON like nameko's, on ``<component>.events`` with the event type as routing key
    and the connection's user as the broker-validated ``user_id``. ``publish`` returns only when the broker
    has confirmed every message; it raises otherwise (nothing is marked published then, so the batch is
    sent again: consumers apply an event once per id). One caller at a time (the relay's own thread)."""

    def __init__(self, amqp_uri: str, component: str, *, confirm_timeout: float = 10.0) -> None:
        self.amqp_uri = amqp_uri
        self.exchange = events_exchange(component)
        self.user_id = broker_user(amqp_uri)
        self.confirm_timeout = confirm_timeout
        self._connection: Connection | None = None
        self._channel: Any = None
        self._sent = 0  # delivery tags handed out on this channel
        self._unconfirmed: set[int] = set()  # the broker may confirm out of order
        self._nacked = False

    def publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Publish ``events`` ((event type, payload) pairs) and wait for the broker to confirm them all; on a
        broken connection, once more on a new one."""
        if not events:
            return
        try:
            self._publish(events)
        except (OSError, AMQPError):
            self._publish(events)

    def _publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        import amqp

        channel = self._open()
        self._nacked = False
        try:
            for event_type, payload in events:
                channel.basic_publish(
                    amqp.Message(json.dumps(payload).encode(), content_type="application/json",
                                 content_encoding="utf-8", delivery_mode=2, user_id=self.user_id, headers={}),
                    exchange=self.exchange, routing_key=event_type)
                self._sent += 1
                self._unconfirmed.add(self._sent)
            deadline = time.monotonic() + self.confirm_timeout
            while self._unconfirmed and not self._nacked:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._unconfirmed)} of {len(events)} events not confirmed in time")
                assert self._connection is not None
                self._connection.drain_events(timeout=remaining)
        except BaseException:
            self.close(broken=True)  # confirms that come later cannot be told apart: start afresh
            raise
        if self._nacked:
            self.close(broken=True)
            raise OSError("the broker refused (nacked) an event of the batch")

    def _open(self) -> Any:
        if self._channel is None:
            # No heartbeats: nothing services them between batches, so the broker would close an idle
            # connection; a connection lost anyway fails the next publish, which opens a new one.
            connection = Connection(self.amqp_uri, heartbeat=0, connect_timeout=10)
            connection.ensure_connection(max_retries=1, timeout=10)
            channel = connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._connection, self._channel, self._sent = connection, channel, 0
            self._unconfirmed.clear()
        return self._channel

    def _settled(self, delivery_tag: int, multiple: bool) -> None:
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._settled(delivery_tag, multiple)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._settled(delivery_tag, multiple)
        self._nacked = True

    def close(self, *, broken: bool = False) -> None:
        """Close the connection (the next ``publish`` opens a new one); a broken one is dropped without a
        word to the broker (which may be gone)."""
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            try:
                connection.collect() if broken else connection.release()
            except Exception:
                log.debug("closing the event publisher's connection failed", exc_info=True)


# --- consuming ----------------------------------------------------------------------------------------

def is_transient(error: BaseException) -> bool:
    """Return whether trying the same event again soon may succeed (nothing in the event is wrong)."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError

    from .errors import Unavailable

    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, Transient | OperationalError | DisconnectionError | Unavailable):
        return True
    if isinstance(error, smtplib.SMTPResponseException):
        return 400 <= error.smtp_code < 500
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(400 <= code < 500 for code, _ in error.recipients.values())
    return isinstance(error, smtplib.SMTPServerDisconnected | OSError)


class AuthenticatedEventHandler(EventHandler):
    """An event handler that applies only events from the owner of their type, matching their schema, with
    bounded, observable failure (see the module's docstring). The producer and whether every instance hears
    the event (broadcast) come from the catalogue, where the handler must be listed as a consumer."""

    def __init__(self, event_type: str, **kwargs: Any) -> None:
        super().__init__(CATALOGUE[event_type].producer, event_type, **kwargs)

    def setup(self) -> None:
        """Declare the handler's queue exactly as ``declare`` does (the same arguments), then consume."""
        config = self.container.config
        service = self.container.service_name
        listed = [sub for sub in CATALOGUE[self.event_type].consumers
                  if (sub.service, sub.method) == (service, self.method_name)]
        if not listed:
            raise RuntimeError(f"{service}.{self.method_name} handles {self.event_type} but the event catalogue "
                               "(klients_common/events.py) does not list it as a consumer")
        self.user_prefix = config["BUS_USER_PREFIX"]
        self.retry_seconds = float(config["BUS_RETRY_SECONDS"])
        exchange = Exchange(events_exchange(self.source_service), type="topic", durable=True, no_declare=True)
        if listed[0].broadcast:
            self.handler_type, self.reliable_delivery = BROADCAST, False
            name = f"evt-{self.source_service}-{self.event_type}--{service}.{self.method_name}-" \
                   f"{self.broadcast_identifier}"
            self.queue = Queue(name, exchange=exchange, routing_key=self.event_type, durable=False,
                               auto_delete=True, exclusive=True)
        else:
            name = handler_queue(self.source_service, self.event_type, service, self.method_name)
            self.queue = Queue(name, exchange=exchange, routing_key=self.event_type, durable=True,
                               queue_arguments=queue_arguments(component_of(service), name,
                                                               int(config["BUS_DELIVERY_LIMIT"])))
        Consumer.setup(self)

    def handle_message(self, body: Any, message: Any) -> None:
        """Check the producer and the payload; start a worker only for an event that passes both."""
        event_id = body.get("event_id") if isinstance(body, dict) else None
        try:
            check_producer(self.event_type, self.source_service, message.properties.get("user_id"),
                           self.user_prefix)
            check_payload(self.event_type, body)
        except EventRejected as exc:
            log.error("event %s (%s) on %s refused and dead-lettered unapplied: %s", self.event_type, event_id,
                      self.queue.name, exc, extra={"event": self.event_type, "reason": exc.reason})
            self._dead_letter(message)
            return
        self._spawn(body, message, self.unpack_message_headers(message), time.monotonic(), 0)

    def _spawn(self, body: Any, message: Any, context_data: dict[str, Any], started: float, attempt: int) -> None:
        from nameko.exceptions import ContainerBeingKilled

        try:
            self.container.spawn_worker(self, (body,), {}, context_data=context_data,
                                        handle_result=partial(self._handled, message, body, started, attempt))
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def _handled(self, message: Any, body: Any, started: float, attempt: int, worker_ctx: Any,
                 result: Any = None, exc_info: Any = None) -> tuple[Any, Any]:
        import eventlet

        if exc_info is None:
            self._settle("acknowledge", self.queue_consumer.ack_message, message)
            return result, exc_info
        error = exc_info[1]
        where = f"event {self.event_type} ({body.get('event_id')}) on {self.queue.name}"
        if isinstance(error, Undeliverable):
            log.warning("%s cannot be applied, dead-lettered: %s", where, error)
            self._dead_letter(message)
        elif is_transient(error) and time.monotonic() - started < self.retry_seconds:
            delay = min(60.0, 2.0 ** attempt)
            log.warning("%s: %s, trying again in %g s", where, type(error).__name__, delay)
            eventlet.spawn_after(delay, self._spawn, body, message, worker_ctx.data, started, attempt + 1)
        else:
            log.error("%s failed (%s: %s); giving it back to the queue", where, type(error).__name__, error)
            eventlet.spawn_after(1.0, self._settle, "give back", self.queue_consumer.requeue_message, message)
        return result, exc_info

    def _dead_letter(self, message: Any) -> None:
        """Reject without requeue: RabbitMQ moves the message to the dead-letter exchange (a broadcast
        handler's queue has none: the message is dropped, after the log line)."""
        self._settle("dead-letter", lambda m: m.reject(requeue=False) if m.channel.connection else None, message)

    def _settle(self, what: str, action: Any, message: Any) -> None:
        """Settle a delivery; if the connection it came on has just died, say so and carry on: the broker
        delivers the message again (the effect is applied once per event id). An exception here would
        otherwise end the whole service container."""
        try:
            action(message)
        except (OSError, AMQPError) as exc:
            log.warning("could not %s event %s on %s (%s): the broker will deliver it again", what,
                        self.event_type, self.queue.name, type(exc).__name__)


def handler(event_type: str) -> Any:
    """Decorate a service method as the handler of ``event_type`` events (authenticated; the catalogue says
    who produces it and whether every instance hears it)."""
    return AuthenticatedEventHandler.decorator(event_type)


# --- dead letters ---------------------------------------------------------------------------------------

def _letter_id(body: bytes | str) -> str:
    body = body.encode() if isinstance(body, str) else body
    try:
        event_id = json.loads(body).get("event_id")
    except (ValueError, AttributeError):
        event_id = None
    return event_id if isinstance(event_id, str) and event_id else hashlib.sha256(body).hexdigest()[:16]


def _describe(message: Any, user_prefix: str) -> dict[str, Any]:
    """Describe a dead letter by where it first died (a letter put back and dead again has an ``x-death``
    entry for the dead-letter queue too: the origin is named by ``x-first-death-queue``)."""
    headers = message.headers or {}
    deaths = headers.get("x-death") or [{}]
    origin = next((d for d in deaths if d.get("queue") == headers.get("x-first-death-queue")), deaths[-1])
    event_type = str((origin.get("routing-keys") or [""])[0])
    source = str(headers.get("x-first-death-exchange") or "").removesuffix(".events")
    try:
        check_producer(event_type, source, message.properties.get("user_id"), user_prefix)
        check_payload(event_type, json.loads(message.body))
        why = "failed in its handler (see the service's log)"
    except EventRejected as exc:
        why = str(exc)
    except ValueError:
        why = "not JSON"
    when = origin.get("time")
    return {"id": _letter_id(message.body), "event": event_type, "queue": str(origin.get("queue") or ""),
            "reason": str(origin.get("reason") or ""), "why": why, "producer": message.properties.get("user_id"),
            "at": when.astimezone(UTC).isoformat() if isinstance(when, datetime) else str(when or ""),
            "times": int(origin.get("count") or 0)}


def _browse(amqp_uri: str, component: str, limit: int) -> tuple[Connection, list[Any]]:
    connection = Connection(amqp_uri, connect_timeout=10)
    channel = connection.channel()
    queue = Queue(dead_letter_queue(component), channel=channel, no_declare=True)
    messages: list[Any] = []
    while len(messages) < limit:
        message = queue.get(no_ack=False, accept=["json"])
        if message is None:
            break
        messages.append(message)
    return connection, messages


def dead_letters(amqp_uri: str, component: str, user_prefix: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Return what waits in ``component``'s dead-letter queue (oldest first), leaving it there."""
    connection, messages = _browse(amqp_uri, component, limit)
    try:
        return [_describe(message, user_prefix) for message in messages]
    finally:
        connection.release()  # unacknowledged: every message stays, in order


def resend(amqp_uri: str, component: str, ids: Iterable[str] | None, limit: int = 1000) -> int:
    """Put dead letters (``ids``, or all when None) back on the queues they came from; return how many.
    The broker moves them (dead-lettering from the dead-letter queue), so each keeps its producer's
    validated ``user_id`` and is checked again like any event."""
    wanted = None if ids is None else set(ids)
    connection, messages = _browse(amqp_uri, component, limit)
    moved = 0
    try:
        for message in messages:
            if wanted is None or _letter_id(message.body) in wanted:
                message.reject(requeue=False)
                moved += 1
    finally:
        connection.release()
    return moved


def dead_letter_command(prog: str, component: str, argv: list[str], amqp_uri: str, user_prefix: str) -> int:
    """``<prog> dead-letters`` lists, ``<prog> resend ID … | --all`` puts back (the operators' commands)."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("command", choices=["dead-letters", "resend"])
    parser.add_argument("ids", nargs="*")
    parser.add_argument("--all", action="store_true", help="put back every dead letter")
    parser.add_argument("--json", action="store_true", help="list as JSON lines")
    args = parser.parse_args(argv)
    if args.command == "dead-letters":
        for letter in dead_letters(amqp_uri, component, user_prefix):
            print(json.dumps(letter) if args.json else
                  f"{letter['id']}\t{letter['at']}\t{letter['event']}\t{letter['queue']}\t{letter['reason']}\t"
                  f"{letter['why']}")
        return 0
    if not args.all and not args.ids:
        parser.error("name the dead letters to resend, or --all")
    print(f"{resend(amqp_uri, component, None if args.all else args.ids)} dead letter(s) put back")
    return 0
