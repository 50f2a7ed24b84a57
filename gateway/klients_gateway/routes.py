"""The public API, ``/api/v1`` (grows with each domain issue), and the health probes."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from klients_common.grants import Right

from . import rpc
from .auth import current_token, token_required

api = Blueprint("api", __name__, url_prefix="/api/v1")
probes = Blueprint("probes", __name__)


@probes.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Say the process is up."""
    return jsonify({"status": "ok"})


@probes.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Say whether RabbitMQ and every service answer; 503 naming those that do not."""
    settings = current_app.config["SETTINGS"]
    services = {name: rpc.ping(name, timeout=min(2.0, settings.rpc_timeout)) for name in settings.ready_services}
    ready = all(services.values())
    return jsonify({"status": "ready" if ready else "not ready", "services": services}), 200 if ready else 503


@api.get("/me")
@token_required
def me() -> ResponseReturnValue:
    """Return the caller and their live grants (from the verified token)."""
    token = current_token()
    return jsonify({
        "id": token.subject,
        "acr": token.acr,
        "grants": [
            {"contract": g.contract, "role": g.role.value, "rights": sorted(g.rights), "until": g.until}
            for g in sorted(token.live_grants(), key=lambda g: g.contract)
        ],
    })


@api.get("/contracts")
@token_required
def contracts() -> ResponseReturnValue:
    """Return the contracts the caller may see, with their role."""
    return jsonify({"items": rpc.call("billing", "list_contracts")})


@api.get("/contracts/<contract>")
@token_required
def contract(contract: str) -> ResponseReturnValue:
    """Return one contract (``bills:read``)."""
    current_token().require(contract, Right.BILLS_READ)
    return jsonify(rpc.call("billing", "get_contract", contract))


@api.get("/contracts/<contract>/meters")
@token_required
def meters(contract: str) -> ResponseReturnValue:
    """Return a contract's meters (``meters:read``)."""
    current_token().require(contract, Right.METERS_READ)
    return jsonify({"items": rpc.call("metering", "list_meters", contract)})
