"""Calling services: one persistent RpcClient per process, the caller's token in context data."""

from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask, current_app, g, request

from klients_common.jsonlog import REQUEST_ID
from klients_common.rpc import RpcClient

from .http import RPC_LATENCY

CONCURRENT = ThreadPoolExecutor(max_workers=16, thread_name_prefix="rpc-together")
REQUEST_ID_FORMAT = re.compile(r"[A-Za-z0-9._:-]{8,64}")  # a caller's id is kept only if it is this harmless


def init_app(app: Flask) -> None:
    """Create the process-wide RPC client (connections are opened in the background)."""
    settings = app.config["SETTINGS"]
    app.extensions["klients_rpc"] = RpcClient(settings.amqp_uri, timeout=settings.rpc_timeout)

    @app.before_request
    def _request_id() -> None:
        supplied = request.headers.get("X-Request-Id", "")
        g.request_id = supplied if REQUEST_ID_FORMAT.fullmatch(supplied) else str(uuid.uuid4())
        REQUEST_ID.set(g.request_id)

    @app.after_request
    def _echo_request_id(response: Any) -> Any:
        response.headers["X-Request-Id"] = g.get("request_id", "")
        return response


def _caller() -> tuple[RpcClient, dict[str, Any]]:
    """Return the process's RPC client and the current caller's context data (token and request id), taken
    in the request's thread so calls made from other threads still carry them."""
    context = {"request_id": g.get("request_id")}
    token = g.get("token")
    if token is not None:
        context["authorization"] = f"Bearer {token.raw}"
    return current_app.extensions["klients_rpc"], context


def _timed(client: RpcClient, context: dict[str, Any], service: str, method: str, *args: Any,
           **kwargs: Any) -> Any:
    with RPC_LATENCY.labels(service, method).time():
        return client.call(service, method, *args, context=context, **kwargs)


def call(service: str, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call ``service.method`` as the current caller (token and request id in context data)."""
    return _timed(*_caller(), service, method, *args, **kwargs)


def call_together(*calls: tuple[str, str, tuple[Any, ...]]) -> list[Any]:
    """Call several ``(service, method, args)`` at once as the current caller (one round trip for all);
    return their results in order, raising the first call's error (in order) if any failed."""
    client, context = _caller()

    def one(service: str, method: str, args: tuple[Any, ...]) -> Any:
        return _timed(client, context, service, method, *args)

    futures = [CONCURRENT.submit(one, *c) for c in calls[1:]]
    try:
        first = [one(*calls[0])] if calls else []
    finally:
        rest = [f.exception() or f.result() for f in futures]  # wait for every call before raising
    for result in rest:
        if isinstance(result, BaseException):
            raise result
    return first + rest


def ping(service: str, timeout: float) -> bool:
    """Return whether ``service`` answers within ``timeout`` seconds."""
    client: RpcClient = current_app.extensions["klients_rpc"]
    try:
        return bool(client.call(service, "ping", timeout=timeout) == "pong")
    except Exception:  # noqa: BLE001 - any failure means "not ready"; /readyz reports which
        return False
