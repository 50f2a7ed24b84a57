"""Rate limits on the endpoints an attacker would hammer: per client address (logins, links, the token
endpoint, bank returns) and per target account (password guesses, link mails, Smart-ID notifications).

Per client address: behind ``TRUSTED_PROXIES`` reverse proxies, the address they report. Per account:
the normalised e-mail address or personal code the request is about, whoever sends it, counted whether
or not an account exists, so the limit answers the same for both (no enumeration through the limit).

Counts live in identity's own database by default (``RATE_LIMIT_STORAGE=database``,
``klients_common.ratelimit``): every gunicorn worker and every instance counts together. ``redis://…``
works too; ``memory://`` counts per process only.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse
from werkzeug.middleware.proxy_fix import ProxyFix

from klients_common.digests import secret_digest
from klients_common.ratelimit import limiter_storage

from . import pages

limiter = Limiter(get_remote_address, headers_enabled=True)
ACCOUNT_LIMITS = {"login": "rate_limit_account_login", "mail": "rate_limit_account_mail",
                  "push": "rate_limit_account_push"}


def init_app(app: Flask) -> None:
    """Attach the limiter (on the configured storage) and the 429 answers."""
    settings = app.config["SETTINGS"]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies)  # type: ignore[method-assign]
    storage = limiter_storage(settings.rate_limit_storage, own_engine=app.extensions["klients_db"].kw["bind"])
    app.config["RATELIMIT_STORAGE_URI"] = storage["storage_uri"]
    app.config["RATELIMIT_STORAGE_OPTIONS"] = storage["storage_options"]
    limiter.init_app(app)

    @app.errorhandler(429)
    def too_many(_error: object) -> ResponseReturnValue:
        if request.path in ("/token", "/revoke", "/introspect"):
            return jsonify({"error": "slow_down", "error_description": "too many requests"}), 429
        return too_many_page()


def too_many_page() -> ResponseReturnValue:
    """The page a browser gets when a limit refuses it."""
    lang = pages.current_lang()
    message = ("Pārāk daudz mēģinājumu. Lūdzu, pagaidiet un mēģiniet vēlreiz vēlāk." if lang == "lv"
               else "Too many attempts. Please wait and try again later.")
    return pages.problem_page(429, "failed", message)


def login_limit() -> str:
    """Return the limit on starting a login (per address)."""
    return str(current_app.config["SETTINGS"].rate_limit_login)


def authorize_limit() -> str:
    """Return the limit on authorization requests (per address): an anonymous one stores the pending request in
    a session row, so unlimited requests would fill the database until the retention job catches up."""
    return str(current_app.config["SETTINGS"].rate_limit_authorize)


def token_limit() -> str:
    """Return the limit on the token endpoint (per address)."""
    return str(current_app.config["SETTINGS"].rate_limit_token)


def _account(kind: str, target: str) -> tuple[object, str]:
    item = parse(getattr(current_app.config["SETTINGS"], ACCOUNT_LIMITS[kind]))
    return item, secret_digest(target)  # no addresses or personal codes in the table


def account_spent(kind: str, target: str) -> bool:
    """Return whether ``target``'s limit of ``kind`` (``login``, ``mail``, ``push``) is used up, counting nothing."""
    item, key = _account(kind, target)
    return not limiter.limiter.test(item, "account", kind, key)  # type: ignore[arg-type]


def account_hit(kind: str, target: str) -> bool:
    """Count one attempt on ``target``; return False when its limit of ``kind`` was already used up."""
    item, key = _account(kind, target)
    return limiter.limiter.hit(item, "account", kind, key)  # type: ignore[arg-type]
