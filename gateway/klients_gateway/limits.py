"""Rate limits on the public API: per client address and per person, shared by every route of the ``api``
blueprint.

A person is the verified token's ``sub``; requests without a valid token count against their address only.
Behind ``TRUSTED_PROXIES`` reverse proxies the address is the one they report. Counts live in memory by
default (one process); ``RATE_LIMIT_STORAGE`` points them at a shared store so every worker and instance
counts together: an SQL database by its SQLAlchemy URL (``postgresql+psycopg2://…``; the gateway has no
database of its own, so ``klients_common.ratelimit`` keeps a ``rate_limits`` table there) or
``redis://host:6379``. A refusal is a 429 problem+json with ``Retry-After``; every answer carries
``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` for the limit with the smallest window (the refusing one
on a 429).

The limits are counted with the ``limits`` library directly (sliding-window counter: O(1) per check), as
flask-limiter counted them, under the same storage keys. flask-limiter's per-request bookkeeping around the
two counts (resolving limits and exemptions per endpoint, building its request context) was about a third of
the gateway's own CPU per balance read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from klients_common.errors import Unauthenticated
from klients_common.ratelimit import limiter_storage

from .auth import current_token

Rule = tuple[RateLimitItem, str, Callable[[], str]]


def client_address() -> str:
    """Return the key of the client's address."""
    return f"ip:{request.remote_addr or '127.0.0.1'}"


def person_or_address() -> str:
    """Return the key of the verified person, or of the address when no valid token came (the request's one
    verification: the operation's check reuses it)."""
    try:
        return f"person:{current_token().subject}"
    except Unauthenticated:
        return client_address()


class ApiLimits:
    """The API's limits: each rule is a limit, its scope (shared by every route) and whose allowance it counts."""

    def __init__(self, storage_setting: str, per_address: str, per_person: str) -> None:
        config = limiter_storage(storage_setting)
        self.storage = storage_from_string(config["storage_uri"], **config["storage_options"])
        self.strategy = SlidingWindowCounterRateLimiter(self.storage)
        rules: list[Rule] = [(item, "api-address", client_address) for item in parse_many(per_address)]
        rules += [(item, "api-person", person_or_address) for item in parse_many(per_person)]
        self.rules = sorted(rules, key=lambda rule: rule[0])  # the smallest window first, its numbers in headers

    def check(self) -> None:
        """Count the request against every rule; raise TooManyRequests (429) at the first one spent."""
        for index, (item, scope, key) in enumerate(self.rules):
            identifiers = (key(), scope)
            allowed = self.strategy.hit(item, *identifiers)
            if index == 0 or not allowed:
                g.rate_limit = (item, identifiers)
            if not allowed:
                raise TooManyRequests(str(item))

    def add_headers(self, response: Response) -> Response:
        """Add the counted limit's numbers and when to try again (kept on 429 only: ``klients_common.web``)."""
        counted: tuple[RateLimitItem, tuple[str, str]] | None = g.get("rate_limit")
        if counted is not None:
            item, identifiers = counted
            reset, remaining = self.strategy.get_window_stats(item, *identifiers)
            reset_at = int(reset + 1)
            headers = response.headers
            headers["X-RateLimit-Limit"] = str(item.amount)
            headers["X-RateLimit-Remaining"] = str(remaining)
            headers["X-RateLimit-Reset"] = str(reset_at)
            headers["Retry-After"] = str(int(reset_at - time.time()))
        return response


def init_app(app: Flask) -> None:
    """Limit the ``api`` blueprint per address and per person."""
    settings = app.config["SETTINGS"]
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies)
    limits = ApiLimits(settings.rate_limit_storage, settings.rate_limit_ip, settings.rate_limit_person)

    @app.before_request
    def _limit() -> None:
        if request.blueprint == "api":
            limits.check()

    @app.after_request
    def _limit_headers(response: Response) -> Any:
        return limits.add_headers(response)

    app.extensions["klients_limits"] = limits
