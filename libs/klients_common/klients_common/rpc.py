"""A persistent, thread-safe nameko RPC client for Flask apps (gateway, identity).

nameko's standalone proxies are single-threaded and costly to build (about 17 ms each against 2.4 ms for a
reused one), so web processes keep one ``RpcClient``: a few publishing connections (``publishers``, each
used by one caller at a time: a publish waits for the broker's confirm, and with one connection every caller
of the process queued behind that round trip) and one consumer thread draining a private reply queue, with
replies matched to callers by correlation id. It speaks nameko's AMQP RPC protocol exactly: the ``nameko-rpc``
topic exchange, routing key ``service.method``, JSON body ``{"args", "kwargs"}``, context data as
``nameko.<key>`` headers, ``reply_to`` and ``correlation_id`` properties, ``mandatory`` publishing so a call
to a service with no queue fails at once.

Every call has a timeout; a service that does not answer in time raises ``RpcTimeout`` (the gateway turns it
into 503). Remote ``klients_common.errors`` come back as the same exception types.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any
from urllib.parse import unquote, urlparse

from amqp.exceptions import ChannelError
from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.connection import Connection
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError
from kombu.messaging import Consumer, Producer

from .errors import KlientsError, error_class

log = logging.getLogger(__name__)

REPLY_QUEUE_TTL_MS = 300_000
PUBLISHERS = 4  # publishing connections per client: callers publishing at the same moment, each its confirm


class RpcError(Exception):
    """The remote call failed in a way the caller did not ask to be told about."""


class RpcTimeout(RpcError):
    """The service did not answer within the timeout."""


class ServiceUnavailable(RpcError):
    """No instance of the service is listening, or the broker cannot be reached."""


class RemoteError(RpcError):
    """An unexpected error inside the service (not one of ``klients_common.errors``)."""

    def __init__(self, exc_type: str, value: str) -> None:
        super().__init__(f"{exc_type}: {value}")
        self.exc_type = exc_type


def error_from_reply(error: dict[str, Any]) -> Exception:
    """Turn nameko's serialised exception into ours, or a RemoteError."""
    cls = error_class(str(error.get("exc_path", "")))
    if cls is not None:
        args = error.get("exc_args") or [""]
        try:
            return cls(str(args[0]), args[1] if len(args) > 1 else None)  # KlientsError parses its JSON extra
        except ValueError:  # not JSON: an older sender; keep the message
            return cls(str(args[0]))
    return RemoteError(str(error.get("exc_type")), str(error.get("value")))


def broker_user(amqp_uri: str) -> str:
    """Return the broker user name in ``amqp_uri`` (each component has its own, see klients_common.bus)."""
    return unquote(urlparse(amqp_uri).username or "guest")


class _Publisher:
    """One publishing connection with publisher confirms, opened on first use; one caller at a time."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self._producer: Producer | None = None

    def producer(self, amqp_uri: str, timeout: float) -> Producer:
        if self._producer is None:
            # No heartbeats on the publishing connection: nothing services them between calls, so the
            # broker would close an idle one; a connection lost anyway is reopened on the next call.
            conn = Connection(amqp_uri, heartbeat=0, transport_options={"confirm_publish": True})
            conn.ensure_connection(max_retries=1, timeout=timeout)
            self.conn = conn
            self._producer = Producer(conn.channel())
        return self._producer

    def reset(self) -> None:
        if self.conn is not None:
            try:
                self.conn.release()
            except Exception:
                log.debug("closing a broken publisher connection failed", exc_info=True)
        self.conn = None
        self._producer = None


class RpcClient:
    """One per process: call ``client.call("billing", "get_contract", ..., context={...})``."""

    def __init__(self, amqp_uri: str, *, timeout: float = 5.0, exchange: str = "nameko-rpc",
                 heartbeat: int = 60, publishers: int = PUBLISHERS) -> None:
        self.amqp_uri = amqp_uri
        self.timeout = timeout
        self.exchange = Exchange(exchange, type="topic", durable=True)
        self.heartbeat = heartbeat
        # Named after the broker user: each component may only declare and read its own reply queues.
        self.user = broker_user(amqp_uri)  # sent as the validated user_id: services know who calls
        self.reply_queue_name = f"rpc.reply-{self.user}-{uuid.uuid4()}"
        self._pending: dict[str, Future[Any]] = {}
        self._pending_lock = threading.Lock()
        self._publishers: queue.LifoQueue[_Publisher] = queue.LifoQueue()  # the last used first: warm ones
        self._all_publishers = [_Publisher() for _ in range(max(1, publishers))]
        for publisher in self._all_publishers:
            self._publishers.put(publisher)
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._consume_forever, name="rpc-replies", daemon=True)
        self._thread.start()

    # --- public -------------------------------------------------------------------------------
    def call(self, service: str, method: str, *args: Any, context: dict[str, Any] | None = None,
             timeout: float | None = None, **kwargs: Any) -> Any:
        """Call ``service.method`` and return its result, raising its error or RpcTimeout."""
        timeout = self.timeout if timeout is None else timeout
        if not self._ready.wait(timeout):
            raise ServiceUnavailable("message broker unreachable")
        correlation_id = str(uuid.uuid4())
        future: Future[Any] = Future()
        with self._pending_lock:
            self._pending[correlation_id] = future
        try:
            self._publish(service, method, args, kwargs, context or {}, correlation_id, timeout)
            try:
                return future.result(timeout)
            except FutureTimeout:
                raise RpcTimeout(f"{service}.{method} did not answer within {timeout:g} s") from None
        finally:
            with self._pending_lock:
                self._pending.pop(correlation_id, None)

    def close(self) -> None:
        """Stop the consumer thread and close connections."""
        self._stopping.set()
        self._thread.join(timeout=5)
        for publisher in self._all_publishers:
            publisher.reset()

    # --- publishing ---------------------------------------------------------------------------
    def _publish(self, service: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                 context: dict[str, Any], correlation_id: str, timeout: float) -> None:
        headers = {f"nameko.{k}": v for k, v in context.items() if v is not None}
        try:
            publisher = self._publishers.get(timeout=timeout)
        except queue.Empty:
            raise RpcTimeout(f"{service}.{method} could not be sent within {timeout:g} s") from None
        try:
            for attempt in (1, 2):
                try:
                    publisher.producer(self.amqp_uri, self.timeout).publish(
                        {"args": list(args), "kwargs": kwargs},
                        exchange=self.exchange, routing_key=f"{service}.{method}",
                        reply_to=self.reply_queue_name, correlation_id=correlation_id, user_id=self.user,
                        headers=headers, mandatory=True, serializer="json",
                        # Transient: a request lives only as long as its caller waits (expiration), so
                        # writing it to disk buys nothing, and a persistent message's confirm waits for
                        # the broker's disk (with the publish lock held: every caller of the process waits).
                        delivery_mode=1, expiration=timeout, timeout=timeout,
                    )
                    return
                except ChannelError as exc:
                    # With publisher confirms, py-amqp raises NO_ROUTE for a mandatory message that
                    # no queue took: nobody serves this method.
                    if "NO_ROUTE" in str(exc):
                        raise ServiceUnavailable(f"service {service} is not running") from exc
                    publisher.reset()
                    last: Exception = exc
                except (OSError, OperationalError, AmqpConnectionError) as exc:
                    log.warning("publish failed (attempt %s): %s", attempt, exc)
                    publisher.reset()
                    last = exc
            raise ServiceUnavailable("message broker unreachable") from last
        finally:
            self._publishers.put(publisher)

    # --- replies ------------------------------------------------------------------------------
    def _consume_forever(self) -> None:
        queue = Queue(self.reply_queue_name, exchange=self.exchange, routing_key=self.reply_queue_name,
                      queue_arguments={"x-expires": REPLY_QUEUE_TTL_MS})
        while not self._stopping.is_set():
            try:
                with Connection(self.amqp_uri, heartbeat=self.heartbeat) as conn:
                    conn.ensure_connection(max_retries=1, timeout=self.timeout)
                    with Consumer(conn, queues=[queue], callbacks=[self._on_reply], accept=["json"],
                                  no_ack=True):
                        self._ready.set()
                        while not self._stopping.is_set():
                            try:
                                conn.drain_events(timeout=1)
                            except TimeoutError:
                                conn.heartbeat_check()
            except Exception as exc:  # noqa: BLE001 - any broker failure: reconnect after a pause
                self._ready.clear()
                if not self._stopping.is_set():
                    log.warning("RPC reply consumer lost its connection: %s; reconnecting", exc)
                    self._stopping.wait(1)

    def _on_reply(self, body: dict[str, Any], message: Any) -> None:
        correlation_id = message.properties.get("correlation_id")
        with self._pending_lock:
            future = self._pending.get(correlation_id)
        if future is None or future.done():
            return
        error = body.get("error") if isinstance(body, dict) else None
        if error:
            future.set_exception(error_from_reply(error))
        else:
            future.set_result(body.get("result") if isinstance(body, dict) else None)


__all__ = ["KlientsError", "RemoteError", "RpcClient", "RpcError", "RpcTimeout", "ServiceUnavailable"]
