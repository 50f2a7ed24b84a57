"""Authenticating and authorising API requests: the shared verifier, the request's verified token (verified
once per request, whoever asks first: the rate limiter for its per-person key, or the operation's check),
and the check each ``@operation`` declaration makes before its view runs."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, current_app, g, request

from klients_common.auth import AccessToken, TokenVerifier
from klients_common.errors import Unauthenticated
from klients_common.grants import Right

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Create the app's token verifier (one JWKS cache per process)."""
    settings = app.config["SETTINGS"]
    app.extensions["klients_verifier"] = TokenVerifier.from_config(
        {"TOKEN_ISSUERS": settings.token_issuers, "TOKEN_LEEWAY": settings.token_leeway}
    )


def current_token() -> AccessToken:
    """Return the request's verified bearer token; raise Unauthenticated (401) when none was sent or it does
    not verify. The outcome is remembered for the request, so the token is verified once however often
    this is asked."""
    if "bearer" not in g:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            g.bearer = Unauthenticated("send an access token as 'Authorization: Bearer <token>'")
        else:
            try:
                g.bearer = current_app.extensions["klients_verifier"].verify(value.strip())
            except Unauthenticated as refused:  # InvalidToken, saying why
                g.bearer = refused
    if isinstance(g.bearer, Unauthenticated):
        raise g.bearer
    token: AccessToken = g.bearer
    return token


def enforce(view: F, right: Right | None, step_up: bool) -> F:
    """Return ``view`` checking its caller first, as its operation declares: a verified token (401), the
    ``right`` on the contract in the path (404 without a live grant on it, 403 naming the missing right),
    and ``acr`` ≥ substantial for ``step_up`` (403 with a step-up challenge). The token becomes the
    request's caller (``g.token``: sent on with each RPC, logged with the request)."""

    @wraps(view)
    def enforced(*args: Any, **kwargs: Any) -> Any:
        token = current_token()
        g.token = token
        if right is not None:
            token.require(kwargs["contract"], right)
        if step_up:
            token.require_acr()
        return view(*args, **kwargs)

    return cast(F, enforced)
