"""Identity's questions to billing's client register, over RPC with identity's own service token (scope
``register:read``): the one place that makes the call, for e-mail registration, the operator pages and the
take-up notices."""

from __future__ import annotations

import time
from typing import Any

from flask import current_app

from klients_common.assurance import LOA_HIGH
from klients_common.auth import REGISTER_READ, service_client, service_subject
from klients_common.errors import NotFound

from ..db import db
from ..oauth.tokens import issue_access_token

SERVICE_TOKEN_SECONDS = 120


def service_token() -> str:
    """Return identity's own short-lived service token (subject ``service:identity``, client
    ``klients-identity``, scope ``register:read``), the only token billing's register answers; cached per
    process until 30 s before it expires."""
    cache = current_app.extensions.setdefault("klients_service_token", {"token": "", "exp": 0.0})
    if cache["exp"] - 30 < time.time():
        settings = current_app.config["SETTINGS"]
        cache["token"] = issue_access_token(
            db(), issuer=settings.issuer, audience=settings.api_audience, subject=service_subject("identity"),
            client_id=service_client("identity"), grants=[], acr=LOA_HIGH, amr=["svc"],
            scope=REGISTER_READ, ttl=SERVICE_TOKEN_SECONDS)
        cache["exp"] = time.time() + SERVICE_TOKEN_SECONDS
    return str(cache["token"])


def call(method: str, argument: str) -> Any:
    """Return billing's answer to ``method(argument)``, asked with identity's service token."""
    return current_app.extensions["klients_rpc"].call(
        "billing", method, argument, context={"authorization": f"Bearer {service_token()}"})


def contracts_of(personal_code: str) -> list[dict[str, Any]]:
    """Return the active contracts a personal code holds."""
    found: list[dict[str, Any]] = call("contracts_of", personal_code)
    return found


def ask(method: str, contract: str) -> Any:
    """Return billing's answer to ``method(contract)`` (``register_entry``, ``email_on_file``), or None when
    the register has no such contract."""
    try:
        return call(method, contract)
    except NotFound:
        return None


def entry(contract: str) -> dict[str, Any] | None:
    """Return the register's entry for a contract (holder, address, e-mail), or None."""
    found: dict[str, Any] | None = ask("register_entry", contract)
    return found


def email_on_file(contract: str) -> str | None:
    """Return the e-mail address the register holds for a contract, or None."""
    found = ask("email_on_file", contract)
    return str(found) if found else None
