"""Klients gateway: the public REST API for portal front ends."""

from __future__ import annotations

from typing import Any

from flask import Flask

from .settings import Settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the gateway: settings from the environment, then ``test_config`` overrides."""
    app = Flask(__name__)
    app.config.from_mapping(SETTINGS=Settings.from_env())
    if test_config:
        app.config.update(test_config)

    from klients_common.web import bind_port, harden

    from . import auth, errors, http, limits, probes, rpc
    from .api import api

    settings = app.config["SETTINGS"]
    harden(app, max_body=settings.max_request_bytes, route_limits={"api.payment_callback": 16 * 1024},
           csp="default-src 'none'; frame-ancestors 'none'", internal_port=bind_port(settings.internal_bind),
           internal_paths=("/metrics", "/readyz"))
    errors.init_app(app)
    auth.init_app(app)
    rpc.init_app(app)
    http.init_app(app)
    limits.init_app(app)
    app.register_blueprint(probes.probes)
    app.register_blueprint(api)
    return app


def serve_app() -> Flask:
    """The gateway as gunicorn serves it: JSON logs (``LOG_FORMAT``) on stderr, then the app."""
    import os

    from klients_common.jsonlog import configure

    configure(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json"))
    return create_app()
