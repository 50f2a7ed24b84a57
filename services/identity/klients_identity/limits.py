"""Rate limits on the endpoints an attacker would hammer: logins, the token endpoint, authorization.

Counted per client address (behind ``TRUSTED_PROXIES`` reverse proxies, the address they report).
Storage is memory by default (one process); production sets ``RATE_LIMIT_STORAGE`` to a shared store
such as ``redis://host:6379`` so every instance counts together.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from . import pages

limiter = Limiter(get_remote_address, headers_enabled=True)


def init_app(app: Flask) -> None:
    """Attach the limiter and the 429 answers."""
    settings = app.config["SETTINGS"]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    app.config["RATELIMIT_STORAGE_URI"] = settings.rate_limit_storage
    limiter.init_app(app)

    @app.errorhandler(429)
    def too_many(_error: object) -> ResponseReturnValue:
        if request.path in ("/token", "/revoke", "/introspect"):
            return jsonify({"error": "slow_down", "error_description": "too many requests"}), 429
        lang = pages.current_lang()
        message = ("Pārāk daudz mēģinājumu. Lūdzu, pagaidiet minūti un mēģiniet vēlreiz." if lang == "lv"
                   else "Too many attempts. Please wait a minute and try again.")
        return pages.problem_page(429, "failed", message)


def login_limit() -> str:
    """Return the limit on starting a login (per address)."""
    from flask import current_app

    return str(current_app.config["SETTINGS"].rate_limit_login)


def token_limit() -> str:
    """Return the limit on the token endpoint (per address)."""
    from flask import current_app

    return str(current_app.config["SETTINGS"].rate_limit_token)
