"""Authenticating API requests: the shared verifier, and the caller's token on ``g``."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, g, request

from klients_common.auth import AccessToken, TokenVerifier
from klients_common.errors import Unauthenticated

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    """Create the app's token verifier (one JWKS cache per process)."""
    settings = app.config["SETTINGS"]
    app.extensions["klients_verifier"] = TokenVerifier.from_config(
        {"TOKEN_ISSUERS": settings.token_issuers, "TOKEN_LEEWAY": settings.token_leeway}
    )


def current_token() -> AccessToken:
    """Return the verified token of this request."""
    token: AccessToken = g.token
    return token


def token_required(view: F) -> F:
    """Verify the bearer token before the view runs; 401 problem+json when it does not verify."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthenticated("send an access token as 'Authorization: Bearer <token>'")
        verified = g.pop("verified", None)  # the rate limiter's verification of this same token, if any
        g.token = verified[1] if verified and verified[0] == value.strip() else \
            current_app.extensions["klients_verifier"].verify(value.strip())
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
