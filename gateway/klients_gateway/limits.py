"""Rate limits on the public API (flask-limiter): per client address and per person, shared by every route.

A person is the verified token's ``sub``; requests without a valid token count against their address only.
Behind ``TRUSTED_PROXIES`` reverse proxies the address is the one they report. Counts live in memory by
default (one process); ``RATE_LIMIT_STORAGE`` points them at a shared store so every worker and instance
counts together: an SQL database by its SQLAlchemy URL (``postgresql+psycopg2://…``; the gateway has no
database of its own, so ``klients_common.ratelimit`` keeps a ``rate_limits`` table there) or
``redis://host:6379``. A refusal is a 429 problem+json with ``Retry-After``.
"""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.middleware.proxy_fix import ProxyFix

from klients_common.errors import Unauthenticated
from klients_common.ratelimit import limiter_storage

from .auth import current_token


def client_address() -> str:
    """Return the key of the client's address."""
    return f"ip:{get_remote_address()}"


def person_or_address() -> str:
    """Return the key of the verified person, or of the address when no valid token came (the request's one
    verification: the operation's check reuses it)."""
    try:
        return f"person:{current_token().subject}"
    except Unauthenticated:
        return client_address()


def init_app(app: Flask) -> None:
    """Limit the ``api`` blueprint per address and per person."""
    from .api import api

    settings = app.config["SETTINGS"]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies)
    limiter = Limiter(client_address, app=app, **limiter_storage(settings.rate_limit_storage), headers_enabled=True,
                      strategy="sliding-window-counter")  # O(1) per check, unlike a moving window
    limiter.shared_limit(settings.rate_limit_ip, scope="api-address", key_func=client_address)(api)
    limiter.shared_limit(settings.rate_limit_person, scope="api-person", key_func=person_or_address)(api)
    app.extensions["klients_limiter"] = limiter
