"""The public API, ``/api/v1``: one module per area, all on one blueprint."""

from __future__ import annotations

from flask import Blueprint, request

from klients_common.errors import ValidationFailed

api = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body(allowed: set[str], *, required: set[str], empty_allowed: bool = False) -> dict[str, object]:
    """Return the request's JSON object, or raise ValidationFailed listing unknown and missing fields.
    With ``empty_allowed``, an empty body counts as ``{}``."""
    if empty_allowed and not request.get_data(cache=True):
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationFailed("Send a JSON object (Content-Type: application/json).")
    errors = [{"field": k, "code": "unknown_field", "message": f"{k} is not accepted here"}
              for k in sorted(set(body) - allowed)]
    errors += [{"field": k, "code": "required", "message": f"{k} is required"} for k in sorted(required - set(body))]
    if errors:
        raise ValidationFailed("The request has errors.", {"errors": errors})
    return body


from . import billing, me, metering, notifications, users  # noqa: E402,F401 - registers the routes on the blueprint
