"""Klients identity: the OpenID Connect provider (Flask + authlib)."""

from __future__ import annotations

from typing import Any

from flask import Flask, g
from sqlalchemy.orm import Session, sessionmaker

from klients_common.db import make_engine

from .settings import Settings


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the identity app: settings from the environment, then ``test_config`` overrides."""
    app = Flask(__name__)
    settings = Settings.from_env()
    app.config.from_mapping(SETTINGS=settings)
    if test_config:
        app.config.update(test_config)
    engine = make_engine(app.config["SETTINGS"].database_url)
    app.extensions["klients_db"] = sessionmaker(engine, expire_on_commit=False)

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    from . import routes

    app.register_blueprint(routes.bp)
    return app


def db() -> Session:
    """Return this request's database session."""
    from flask import current_app

    if "db" not in g:
        g.db = current_app.extensions["klients_db"]()
    return g.db
