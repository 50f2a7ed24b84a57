"""The identity web app: settings, database, sessions, hardening, rate limits, the authorization server and
every blueprint put together (``create_app``); ``serve_app`` is what gunicorn serves."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from flask import Flask, g, request
from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine
from klients_common.jsonlog import configure
from klients_common.rpc import RpcClient

from . import hardening, limits, pages
from .access import attachments
from .login import email_login
from .login import invitation as invite
from .login import methods as login
from .login.web_session import DatabaseSessionInterface
from .oauth import endpoints as oidc
from .oauth import provider, verifier
from .operator import applications as operator
from .settings import Settings

access_log = logging.getLogger("klients_identity.access")  # one line per request (the gateway's are alike)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the identity app: settings from the environment, then ``test_config`` overrides."""
    app = Flask(__name__)
    settings = Settings.from_env()
    app.config.from_mapping(SETTINGS=settings, SESSION_COOKIE_NAME="klients_identity",
                            SESSION_COOKIE_SECURE=settings.session_cookie_secure, MAX_CONTENT_LENGTH=64 * 1024)
    if test_config:
        app.config.update(test_config)
    settings = app.config["SETTINGS"]
    engine = make_engine(settings.database_url)
    app.extensions["klients_db"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    app.session_interface = DatabaseSessionInterface(sessionless=oidc.JSON_ENDPOINTS)
    app.extensions["klients_rpc"] = RpcClient(settings.amqp_uri, timeout=10)
    app.extensions["klients_verifier"] = verifier.local_verifier(settings)
    app.extensions["klients_login_methods"] = set(settings.login_methods)
    hardening.install(app, route_limits={  # the operators' upload form: the file and the fields
        "operator.record_application": attachments.MAX_BYTES + 256 * 1024})
    app.config.setdefault("OAUTH2_SCOPES_SUPPORTED", oidc.SCOPES)  # authlib: invalid_scope for any other scope
    provider.config_oauth(app)
    limits.init_app(app)
    app.register_blueprint(oidc.bp)
    app.register_blueprint(login.bp)
    app.register_blueprint(email_login.bp)
    app.register_blueprint(invite.bp)
    app.register_blueprint(operator.bp)

    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _access_line(response: Any) -> Any:
        # The route template only: query strings here carry codes, states and login hints.
        access_log.info("request", extra={
            "method": request.method, "route": request.url_rule.rule if request.url_rule else "unmatched",
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - g.get("started", time.perf_counter())) * 1000, 2)})
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.errorhandler(400)
    def bad_request(error: Any) -> Any:
        return pages.problem_page(400, "bad_request", getattr(error, "description", "") or "")

    return app


def serve_app() -> Flask:
    """Identity as gunicorn serves it: JSON logs (``LOG_FORMAT``) on stderr, then the app."""
    configure(os.environ.get("LOG_LEVEL", "INFO"), os.environ.get("LOG_FORMAT", "json"))
    return create_app()
