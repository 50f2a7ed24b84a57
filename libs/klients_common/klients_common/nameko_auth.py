"""Rights enforcement inside nameko services: the caller's token travels in context data.

The gateway (or any caller) puts ``authorization: "Bearer <access token>"`` into nameko context data;
nameko sends it as the ``nameko.authorization`` message header and copies it into every downstream RPC
call and event a worker makes (nameko 2.14.1 copies ``worker_ctx.data`` into ``context_data``). A
service never trusts that header: ``Authorization`` re-verifies the token in each worker, so a message
published straight to the broker with a forged header is refused like any other bad token.

Service-to-service calls (identity asking billing's register) rest on who is calling, not on a scope a
person could ask for: the RPC client stamps each request with its broker user as the AMQP ``user_id``
(RabbitMQ refuses a ``user_id`` that is not the connection's), our ``rpc`` entrypoint hands it to the worker
(overwriting any header of that name), and ``Caller.require_service`` checks it beside the service token.

    class BillingService:
        name = "billing"
        auth = Authorization()

        @rpc
        def get_contract(self, contract):
            self.auth.require(contract, Right.BILLS_READ)
"""

from __future__ import annotations

import sys
from typing import Any

import kombu.serialization
from kombu.connection import Connection
from kombu.pools import producers
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_RETRY_POLICY,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    NON_PERSISTENT,
)
from nameko.exceptions import IncorrectSignature, UnserializableValueError, deserialize_to_instance, serialize
from nameko.extensions import DependencyProvider
from nameko.rpc import Rpc, get_rpc_exchange

from .auth import AccessToken, TokenVerifier, service_client, service_subject
from .errors import Forbidden, KlientsError, NotFound, Unauthenticated
from .grants import Grant, Right
from .jsonlog import REQUEST_ID
from .revocations import REVOCATIONS

CONTEXT_KEY = "authorization"
BROKER_USER_KEY = "broker_user"  # the broker-validated user that sent the request (never from a header)


def _register_remote_errors() -> None:
    """Let our errors cross nameko RPC as themselves (not RemoteError), so a service calling another
    re-raises e.g. NotFound unchanged and the gateway maps it to the same status."""
    pending: list[type[KlientsError]] = [KlientsError]
    while pending:
        cls = pending.pop()
        deserialize_to_instance(cls)
        pending.extend(cls.__subclasses__())


_register_remote_errors()


class AuthenticatedRpc(Rpc):
    """nameko's RPC entrypoint that tells the worker which broker user sent the request, checks a call's
    arguments against the method's signature once per shape of call, and answers transient, without a
    publisher confirm.

    A reply is useful only while its caller waits (seconds) and goes to the caller's own reply queue: writing it
    to the broker's disk (nameko's default, persistent) and waiting for the confirm buys nothing, since a reply
    lost with the broker is a timeout either way. nameko's ``Responder`` also builds a publisher and a kombu
    connection (parsing the broker URI) for every reply and serialises the result twice; here the producer pool
    is looked up once per container and the reply serialised once. What a caller receives is nameko's reply
    exactly (``{"result", "error"}``, the request's content type, its ``correlation_id``)."""

    _SHAPES = 64  # argument shapes remembered per method (the count of positional arguments, the keyword names)

    def setup(self) -> None:
        """Register with the RPC consumer; prepare the reply producers."""
        super().setup()
        config = self.container.config
        self._shapes: dict[tuple[int, tuple[str, ...]], str | None] = {}
        self._exchange = get_rpc_exchange(config)
        self._producers = producers[Connection(
            config[AMQP_URI_CONFIG_KEY], ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            transport_options={**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False})]

    def check_signature(self, args: Any, kwargs: Any) -> None:
        """nameko's check (``inspect.getcallargs``, a few per cent of a call), remembered per shape of call:
        whether arguments bind depends only on how many are positional and which are named."""
        shape = (len(args), tuple(kwargs))
        if shape in self._shapes:
            refusal = self._shapes[shape]
        else:
            try:
                super().check_signature(args, kwargs)
                refusal = None
            except IncorrectSignature as exc:
                refusal = str(exc)
            if len(self._shapes) < self._SHAPES:
                self._shapes[shape] = refusal
        if refusal is not None:
            raise IncorrectSignature(refusal)

    def handle_result(self, message: Any, worker_ctx: Any, result: Any, exc_info: Any) -> Any:
        """Send the worker's reply (transient, no confirm), then acknowledge the request."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        serializer = kombu.serialization.registry.type_to_name[message.properties["content_type"]]
        try:
            content_type, encoding, body = kombu.serialization.dumps({"result": result, "error": error}, serializer)
        except Exception:  # noqa: BLE001 - as nameko: an unserialisable result is answered as an error
            exc_info = sys.exc_info()
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": serialize(UnserializableValueError(result))}, serializer)
            result = None
        with self._producers.acquire(block=True) as producer:
            producer.publish(body, content_type=content_type, content_encoding=encoding, exchange=self._exchange,
                             routing_key=message.properties["reply_to"],
                             correlation_id=message.properties.get("correlation_id"), delivery_mode=NON_PERSISTENT,
                             retry=True, retry_policy=DEFAULT_RETRY_POLICY)
        self.rpc_consumer.queue_consumer.ack_message(message)
        return result, exc_info

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        """Context data from the headers, with the request's validated ``user_id`` under ``BROKER_USER_KEY``."""
        data: dict[str, Any] = super().unpack_message_headers(message)
        data[BROKER_USER_KEY] = message.properties.get("user_id")
        return data


def rpc(method: Any) -> Any:
    """nameko's ``@rpc`` for our services: our own errors (not found, forbidden, validation...) are answers,
    not failures, so nameko logs them as expected (a warning, without a traceback: see
    ``klients_common.jsonlog.QuietExpected``) and keeps ``error`` for what really went wrong. The worker
    learns the calling broker user (see ``Caller.require_service``)."""
    return AuthenticatedRpc.decorator(expected_exceptions=(KlientsError,))(method)


class Caller:
    """The verified caller of one worker; verification happens on first use."""

    def __init__(self, verifier: TokenVerifier, worker_ctx: Any, user_prefix: str) -> None:
        self._verifier = verifier
        self._worker_ctx = worker_ctx
        self._user_prefix = user_prefix
        self._token: AccessToken | None = None

    @property
    def token(self) -> AccessToken:
        """Return the verified access token or raise Unauthenticated (also for a token identity revoked after
        issuing it: ``/revoke``, logout, a password change, a reused code or refresh token)."""
        if self._token is None:
            token = self._verifier.verify(self._worker_ctx.data.get(CONTEXT_KEY))
            if REVOCATIONS.token_revoked(token.claims):
                raise Unauthenticated("the access token was revoked")
            self._token = token
        return self._token

    @property
    def person_id(self) -> str:
        """Return the caller's opaque person id (the token's ``sub``)."""
        return self.token.subject

    def require(self, contract: str, right: Right | str) -> Grant:
        """Return the caller's grant on ``contract`` if it gives ``right`` and was not revoked since the token
        was issued; raise NotFound or Forbidden."""
        token = self.token
        if REVOCATIONS.revoked(token.subject, contract, float(token.claims["iat"])):
            raise NotFound(f"contract {contract} not found")
        return token.require(contract, right)

    def require_scope(self, scope: str) -> None:
        """Raise Forbidden unless the caller's token carries ``scope``."""
        self.token.require_scope(scope)

    def require_component(self, *components: str) -> None:
        """Raise Forbidden unless the request came over the broker from one of ``components``' own users."""
        if self._worker_ctx.data.get(BROKER_USER_KEY) not in {self._user_prefix + c for c in components}:
            raise Forbidden(f"only {' or '.join(components)} may call this")

    def require_service(self, component: str, scope: str) -> None:
        """Raise Forbidden unless the request came over the broker from ``component``'s own user and carries
        ``component``'s own service token (subject ``service:<component>``, issued to its service client) with
        ``scope``. A scope alone could have been obtained by a person; a person's token never has this subject."""
        self.require_component(component)
        token = self.token
        if token.subject != service_subject(component) or token.client_id != service_client(component):
            raise Forbidden(f"only {component}'s own service token may call this")
        token.require_scope(scope)

    def require_acr(self, minimum: str | None = None) -> None:
        """Raise StepUpRequired unless the session is strong enough."""
        if minimum is None:
            self.token.require_acr()
        else:
            self.token.require_acr(minimum)


class Authorization(DependencyProvider):
    """Gives each worker a ``Caller`` built from the token in its context data."""

    verifier: TokenVerifier

    def setup(self) -> None:
        """Build one verifier (and its JWKS cache) per service container."""
        self.verifier = TokenVerifier.from_config(self.container.config)
        self.user_prefix = str(self.container.config["BUS_USER_PREFIX"])

    def get_dependency(self, worker_ctx: Any) -> Caller:
        """Return the caller of this worker."""
        return Caller(self.verifier, worker_ctx, self.user_prefix)

    def worker_setup(self, worker_ctx: Any) -> None:
        """Put the caller's request id on this worker's log records (the worker's own green thread)."""
        request_id = worker_ctx.data.get("request_id")
        REQUEST_ID.set(request_id if isinstance(request_id, str) and len(request_id) <= 64 else None)
