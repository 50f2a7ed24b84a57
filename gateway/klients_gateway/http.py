"""Cross-cutting HTTP behaviour of the gateway: CORS for the configured portal origins only, and
Prometheus metrics (requests by route, method and status; latency by route; RPC latency by service).

Metrics are per process; with several gunicorn workers set ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's
multiprocess mode) or scrape each worker. ``/metrics`` is served on the internal port only (``klients_common.web``).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

ACCESS_LOG = logging.getLogger("klients_gateway.access")
REQUESTS = Counter("klients_gateway_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("klients_gateway_request_seconds", "HTTP request latency", ["route"])
RPC_LATENCY = Histogram("klients_gateway_rpc_seconds", "RPC latency by service and method", ["service", "method"])
CORS_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
CORS_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"


def init_app(app: Flask) -> None:
    """Install CORS and metrics."""
    origins = set(app.config["SETTINGS"].cors_origins)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _cors_and_metrics(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and origin in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Idempotent-Replayed, Retry-After"
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = CORS_METHODS
                response.headers["Access-Control-Allow-Headers"] = CORS_HEADERS
                response.headers["Access-Control-Max-Age"] = "600"
        response.vary.add("Origin")
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        elapsed = time.perf_counter() - g.started if "started" in g else 0.0
        LATENCY.labels(route).observe(elapsed)
        token = g.get("token")
        ACCESS_LOG.info("request", extra={  # the route template, never the raw URL (queries hold addresses)
            "method": request.method, "route": route, "status": response.status_code,
            "duration_ms": round(elapsed * 1000, 2), "person": token.subject if token is not None else None,
            "request_id": g.get("request_id")})
        return response

    @app.get("/metrics")
    def metrics() -> Any:
        return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)
