"""Meters, readings and consumption (docs/api.md, "Submitting a reading", "Consumption history")."""

from __future__ import annotations

import csv
import io

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from .. import rpc
from .. import schemas as s
from ..openapi import operation, validated_body, validated_query
from . import api


@api.get("/contracts/<contract>/meters")
@operation(summary="A contract's meters", tag="meters", right="meters:read", response=s.items(s.METER))
def meters(contract: str) -> ResponseReturnValue:
    """Return a contract's meters."""
    return jsonify({"items": rpc.call("metering", "list_meters", contract)})


@api.get("/contracts/<contract>/meters/<meter>/readings")
@operation(summary="A meter's readings", tag="meters", right="meters:read", response=s.items(s.READING))
def readings(contract: str, meter: str) -> ResponseReturnValue:
    """Return a meter's readings, replaced ones included."""
    return jsonify({"items": rpc.call("metering", "list_readings", contract, meter)})


@api.post("/contracts/<contract>/meters/<meter>/readings")
@operation(summary="Submit a reading", tag="meters", right="readings:submit", body=s.READING_SUBMIT,
           response=s.READING, status=201)
def submit_reading(contract: str, meter: str) -> ResponseReturnValue:
    """Submit a reading: ``{"value": 12345}``, with ``confirm_rollover`` or ``confirm_unusual`` set to true
    when the first answer asked for that confirmation."""
    body = validated_body()
    reading = rpc.call("metering", "submit_reading", contract, meter, body["value"],
                       confirm_rollover=body.get("confirm_rollover", False),
                       confirm_unusual=body.get("confirm_unusual", False))
    return jsonify(reading), 201


@api.get("/contracts/<contract>/consumption")
@operation(summary="Consumption by month, quarter or year", tag="meters", right="consumption:read",
           query=s.CONSUMPTION_QUERY, response=s.CONSUMPTION)
def consumption(contract: str) -> ResponseReturnValue:
    """Return consumption per month, quarter or year; ``format=csv`` for a file."""
    args = validated_query()
    history = rpc.call("metering", "consumption", contract, args["period_from"], args["period_to"], args["group_by"])
    if args["format"] == "csv" or request.accept_mimetypes.best == "text/csv":
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
