"""The error vocabulary shared by services and the gateway.

Services raise these; nameko serialises them as ``exc_path``, and the caller's RPC client raises the same
class again (``error_class``). Each class carries its own HTTP ``status`` and ``title``, which the gateway
answers with (``klients_gateway.errors``); the gateway's own table maps only the transport's errors (a
timeout, no service, an unknown remote error). Messages must be safe to show to the caller.
"""

from __future__ import annotations

import json


class KlientsError(Exception):
    """Base of every error a service deliberately reports to its caller."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", extra: dict[str, object] | str | None = None) -> None:
        # Both travel in ``args`` so nameko's serialisation (exc_args) carries them to the caller. ``extra``
        # travels as JSON text: nameko turns every non-text value inside args into text (a 900 became "900").
        if isinstance(extra, str):
            extra = json.loads(extra)
        extra = extra if isinstance(extra, dict) else {}
        super().__init__(detail, json.dumps(extra, default=str))
        self.detail = detail
        self.extra = extra

    def __str__(self) -> str:
        return self.detail


class Unauthenticated(KlientsError):
    """The caller carried no token, or one that does not verify."""

    status = 401
    title = "Authentication required"


class Forbidden(KlientsError):
    """The caller is known and has a grant, but lacks the right the action needs."""

    status = 403
    title = "Forbidden"


class StepUpRequired(Forbidden):
    """The action needs a higher assurance level than the session has."""

    title = "Stronger authentication required"


class NotFound(KlientsError):
    """The object does not exist, or the caller has no grant on its contract (never told apart)."""

    status = 404
    title = "Not found"


class Conflict(KlientsError):
    """The request conflicts with the current state (e.g. a concurrent duplicate)."""

    status = 409
    title = "Conflict"


class ValidationFailed(KlientsError):
    """The input is well-formed JSON but breaks a rule; ``errors`` lists each bad field."""

    status = 422
    title = "Validation failed"


class Unavailable(KlientsError):
    """Something the action depends on (a provider, another service) is not answering; try again later."""

    status = 503
    title = "Service unavailable"


def error_class(exc_path: str) -> type[KlientsError] | None:
    """Return the KlientsError subclass nameko serialised as ``exc_path`` (module.Class), if any."""
    pending: list[type[KlientsError]] = [KlientsError]
    while pending:
        cls = pending.pop()
        if f"{cls.__module__}.{cls.__name__}" == exc_path:
            return cls
        pending.extend(cls.__subclasses__())
    return None
