"""The public API, ``/api/v1``: one module per area, all on one blueprint."""

from __future__ import annotations

from flask import Blueprint

api = Blueprint("api", __name__, url_prefix="/api/v1")


from . import billing, me, metering, notifications, overview, reference, users  # noqa: E402,F401 - registers the routes on the blueprint
