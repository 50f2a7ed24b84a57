"""Every error leaves the gateway as RFC 9457 problem+json: a ``KlientsError`` with its own status and title,
the transport's errors through ``STATUS_BY_EXCEPTION``, anything else as a 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json
from werkzeug.exceptions import HTTPException

from klients_common.errors import KlientsError, StepUpRequired, Unauthenticated
from klients_common.rpc import RemoteError, RpcTimeout, ServiceUnavailable

log = logging.getLogger(__name__)

# exception type -> (status, title). Subclasses of KlientsError carry their own status and title.
STATUS_BY_EXCEPTION: dict[type[Exception], tuple[int, str]] = {
    RpcTimeout: (503, "Service did not answer in time"),
    ServiceUnavailable: (503, "Service unavailable"),
    RemoteError: (500, "Internal error"),
}


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    """Return a problem+json response."""
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    body.update(extra)
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    elif status == 503:
        response.headers["Retry-After"] = "5"
    return response


def _klients_error(exc: KlientsError) -> Response:
    response = problem(exc.status, exc.title, exc.detail, **exc.extra)
    if isinstance(exc, StepUpRequired):
        acr = exc.extra.get("acr_values", "")
        challenge = f'Bearer error="insufficient_user_authentication", acr_values="{acr}"'
        if isinstance(exc.extra.get("max_age"), int):  # RFC 9470: the login must also be this recent
            challenge += f", max_age={exc.extra['max_age']}"
        response.headers["WWW-Authenticate"] = challenge
    elif isinstance(exc, Unauthenticated):
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def _mapped_error(exc: Exception) -> Response:
    status, title = next(v for k, v in STATUS_BY_EXCEPTION.items() if isinstance(exc, k))
    if status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    return problem(status, title)


def _http_error(exc: HTTPException) -> Response:
    return problem(exc.code or 500, exc.name, exc.description or "")


def _unexpected(exc: Exception) -> Response:
    log.exception("unhandled error")
    return problem(500, "Internal error")


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(KlientsError, _klients_error)
    for exc_type in STATUS_BY_EXCEPTION:
        app.register_error_handler(exc_type, _mapped_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
