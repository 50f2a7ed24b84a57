"""Identity's questions to billing's client register, over RPC with identity's own service token (scope
``register:read``): the one place that makes the call, for e-mail registration, the operator pages and the
take-up notices."""

from __future__ import annotations

from typing import Any

from flask import current_app

from klients_common.errors import NotFound

from .login import service_token


def ask(method: str, contract: str) -> Any:
    """Return billing's answer to ``method(contract)`` (``register_entry``, ``email_on_file``), or None when
    the register has no such contract."""
    try:
        return current_app.extensions["klients_rpc"].call(
            "billing", method, contract, context={"authorization": f"Bearer {service_token()}"})
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
