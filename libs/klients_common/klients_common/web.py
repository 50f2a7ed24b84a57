"""Response hardening shared by every Flask app we serve (identity, the gateway, later the portal):
``harden(app, ...)`` installs, in one place,

- **request size limits**: a request whose ``Content-Length`` is over the limit is refused with 413 before
  anything reads its body; a body without a length (``Transfer-Encoding: chunked``) is read through a bounded
  stream that stops at the limit with the same 413. One limit per app, and larger ones for named endpoints
  (an upload form). The 413 is rendered by the app's own error handlers (problem+json on the API, a page at
  identity).
- **security headers** on every answer: ``Content-Security-Policy`` (the app's; ``csp_sources`` adds
  sources computed per request, e.g. where identity's forms may post to), ``X-Frame-Options: DENY``,
  ``Referrer-Policy``, ``X-Content-Type-Options: nosniff``. A view that sets one of them keeps its own.
- **cache rules**: ``Cache-Control: no-store`` unless the view chose its own (public documents such as the
  OpenID discovery document and the JWKS keep their ``max-age``), so nothing personal and no login state is
  kept by a browser or a proxy.
- **303 after a POST**: a POST answered with 302 is answered with 303 See Other instead (the browser then
  GETs the new location; OpenID Connect expects 303 after a form post).
- **Retry-After only where it means something**: on 429 and 503, never on other answers (flask-limiter adds
  it to every answer when its headers are on).
- **an internal port**: paths such as ``/metrics`` and ``/readyz`` (what the system looks like inside) are
  served only on the connection's local port ``internal_port`` (a second bind of the same server, reachable
  from the host or the cluster only), and answered 404 on the public port; the internal port serves nothing
  else but ``/healthz``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, abort, request

DEFAULT_MAX_BODY = 1024 * 1024
LIVENESS = "/healthz"  # says only that the process runs: served on both ports


@dataclass(frozen=True)
class Hardening:
    """What ``harden`` installed on an app (``app.extensions["klients_hardening"]``)."""

    max_body: int
    route_limits: Mapping[str, int]
    csp: str
    csp_sources: Callable[[], Mapping[str, Iterable[str]]] | None
    referrer_policy: str
    frame_options: str | None
    internal_port: int | None
    internal_paths: frozenset[str] = field(default_factory=frozenset)

    def limit_for(self, endpoint: str | None) -> int:
        """Return the body limit of ``endpoint`` (the app's unless it has its own)."""
        return self.route_limits.get(endpoint or "", self.max_body)


def bind_port(bind: str) -> int | None:
    """Return the port of a ``host:port`` bind (None when there is none)."""
    _, _, port = bind.rpartition(":")
    return int(port) if port.isdigit() else None


def local_port(environ: Mapping[str, Any]) -> int | None:
    """Return the local port the request's connection came in on: gunicorn's socket when there is one (the
    ``Host`` header cannot change it), else the WSGI server's ``SERVER_PORT``."""
    sock = environ.get("gunicorn.socket")
    if sock is not None:
        try:
            name = sock.getsockname()
        except OSError:
            return None
        return int(name[1]) if isinstance(name, tuple) else None
    port = str(environ.get("SERVER_PORT", ""))
    return int(port) if port.isdigit() else None


def harden(app: Flask, *, max_body: int = DEFAULT_MAX_BODY, route_limits: Mapping[str, int] | None = None,
           csp: str = "default-src 'none'; frame-ancestors 'none'",
           csp_sources: Callable[[], Mapping[str, Iterable[str]]] | None = None,
           referrer_policy: str = "no-referrer", frame_options: str | None = "DENY",
           internal_port: int | None = None, internal_paths: Iterable[str] = ()) -> Hardening:
    """Install the hardening on ``app`` (see the module's description); return what was installed."""
    policy = Hardening(max_body=max_body, route_limits=dict(route_limits or {}), csp=csp, csp_sources=csp_sources,
                       referrer_policy=referrer_policy, frame_options=frame_options, internal_port=internal_port,
                       internal_paths=frozenset(internal_paths))
    app.extensions["klients_hardening"] = policy
    app.config["MAX_CONTENT_LENGTH"] = max_body  # werkzeug bounds every body stream with it (then per route)

    def _refuse_early() -> None:
        if policy.internal_port is not None:
            internal = local_port(request.environ) == policy.internal_port
            if request.path != LIVENESS and internal != (request.path in policy.internal_paths):
                abort(404)
        limit = policy.limit_for(request.endpoint)
        request.max_content_length = limit
        environ = request.environ
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():  # no length (RFC 9112: it wins)
            _read_bounded(environ, limit)
        elif request.content_length is not None and request.content_length > limit:
            abort(413, f"The request body may be at most {limit} bytes.")

    # first of all before_request functions: nothing (a rate limiter, a session, a view) may read the body
    app.before_request_funcs.setdefault(None, []).insert(0, _refuse_early)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        if "Content-Security-Policy" not in headers:
            headers["Content-Security-Policy"] = _csp(policy, response)
        if policy.frame_options:
            headers.setdefault("X-Frame-Options", policy.frame_options)
        headers.setdefault("Referrer-Policy", policy.referrer_policy)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        if "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"
        return response

    app.wsgi_app = _FinalRules(app.wsgi_app)  # type: ignore[method-assign]
    return policy


def _read_bounded(environ: dict[str, Any], limit: int) -> None:
    """Read a body sent without a length (chunked) up to ``limit`` bytes and hand it on with its length;
    413 as soon as one byte more comes (the rest is never read)."""
    stream = environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    while size <= limit:
        part = stream.read(min(65536, limit + 1 - size))
        if not part:
            break
        parts.append(part)
        size += len(part)
    if size > limit:
        abort(413, f"The request body may be at most {limit} bytes.")
    environ["wsgi.input"] = io.BytesIO(b"".join(parts))
    environ["CONTENT_LENGTH"] = str(size)
    del environ["HTTP_TRANSFER_ENCODING"]


def _csp(policy: Hardening, response: Response) -> str:
    if policy.csp_sources is None or response.mimetype != "text/html":
        return policy.csp
    directives: dict[str, list[str]] = {}
    for part in policy.csp.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            directives[name] = sources.split()
    for name, extra in policy.csp_sources().items():
        values = directives.setdefault(name, [])
        values += [source for source in extra if source not in values]
    return "; ".join(" ".join([name, *values]) for name, values in directives.items())


class _FinalRules:
    """The rules applied to the status line and headers as they leave the app (after every handler and
    extension): 303 instead of 302 after a POST, Retry-After only on 429 and 503."""

    def __init__(self, wsgi_app: Callable[..., Any]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        post = environ.get("REQUEST_METHOD") == "POST"

        def _start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            code = status[:3]
            if post and code == "302":
                status = "303 SEE OTHER"
            if code not in ("429", "503"):
                headers = [(k, v) for k, v in headers if k.lower() != "retry-after"]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.wsgi_app(environ, _start)
