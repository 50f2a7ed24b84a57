"""The public API, ``/api/v1`` (grows with each domain issue), and the health probes."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from klients_common.errors import ValidationFailed
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


@api.get("/contracts/<contract>/meters/<meter>/readings")
@token_required
def readings(contract: str, meter: str) -> ResponseReturnValue:
    """Return a meter's readings, replaced ones included (``meters:read``)."""
    current_token().require(contract, Right.METERS_READ)
    return jsonify({"items": rpc.call("metering", "list_readings", contract, meter)})


@api.post("/contracts/<contract>/meters/<meter>/readings")
@token_required
def submit_reading(contract: str, meter: str) -> ResponseReturnValue:
    """Submit a reading (``readings:submit``): ``{"value": 12345}``, with ``confirm_rollover`` or
    ``confirm_unusual`` set to true when the first answer asked for that confirmation."""
    current_token().require(contract, Right.READINGS_SUBMIT)
    body = json_body({"value", "confirm_rollover", "confirm_unusual"}, required={"value"})
    for flag in ("confirm_rollover", "confirm_unusual"):
        if not isinstance(body.get(flag, False), bool):
            raise ValidationFailed("The request has errors.", {"errors": [
                {"field": flag, "code": "not_boolean", "message": f"{flag} must be true or false"}]})
    reading = rpc.call("metering", "submit_reading", contract, meter, body["value"],
                       confirm_rollover=body.get("confirm_rollover", False),
                       confirm_unusual=body.get("confirm_unusual", False))
    return jsonify(reading), 201


@api.get("/contracts/<contract>/consumption")
@token_required
def consumption(contract: str) -> ResponseReturnValue:
    """Return consumption per month, quarter or year (``consumption:read``); ``format=csv`` for a file."""
    current_token().require(contract, Right.CONSUMPTION_READ)
    args = request.args
    history = rpc.call("metering", "consumption", contract, args.get("period_from", ""), args.get("period_to", ""),
                       args.get("group_by", "month"))
    if args.get("format") == "csv" or request.accept_mimetypes.best == "text/csv":
        return _consumption_csv(contract, history)
    return jsonify(history)


CSV_COLUMNS = ("interval_start", "interval_end", "consumption_m3", "consumption_kwh", "quality", "previous_year_m3")


def _consumption_csv(contract: str, history: dict[str, object]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in history["items"]:  # type: ignore[attr-defined]
        writer.writerow(["" if item[c] is None else item[c] for c in CSV_COLUMNS])
    name = f"consumption-{contract}-{history['period_from']}-{history['period_to']}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def json_body(allowed: set[str], *, required: set[str]) -> dict[str, object]:
    """Return the request's JSON object, or raise ValidationFailed listing unknown and missing fields."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object (Content-Type: application/json).")
    errors = [{"field": k, "code": "unknown_field", "message": f"{k} is not accepted here"}
              for k in sorted(set(body) - allowed)]
    errors += [{"field": k, "code": "required", "message": f"{k} is required"} for k in sorted(required - set(body))]
    if errors:
        raise ValidationFailed("The request has errors.", {"errors": errors})
    return body
