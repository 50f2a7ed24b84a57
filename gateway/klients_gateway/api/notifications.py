"""Turning e-mail reminders off from the link in a reminder (no login: the link is signed)."""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from klients_common.errors import ValidationFailed

from .. import rpc
from .. import schemas as s
from ..openapi import operation
from . import api


@api.route("/notifications/unsubscribe", methods=["GET", "POST"])
@operation(summary="Turn e-mail reminders off (the link in a reminder)", tag="notifications", public=True,
           query={"email": ({"type": "string"}, True), "sig": ({"type": "string"}, True)},
           response=s.UNSUBSCRIBED)
def unsubscribe() -> ResponseReturnValue:
    """Turn reminders off for the address in a reminder's signed link (GET from the mail, POST one-click)."""
    email, sig = request.values.get("email", ""), request.values.get("sig", "")
    if not email or not sig or not rpc.call("notifications", "unsubscribe", email, sig):
        raise ValidationFailed("This link is not valid. Use the link in the latest reminder.",
                               {"code": "bad_link"})
    return jsonify({"email": email, "reminders": "off"})
