"""A contract's overview in one call: what a front page shows (amount to pay, overdue, credit, next due date,
the meters with their last reading and the reading window), gathered with one RPC per service, concurrently."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from klients_common.grants import Right

from .. import rpc
from .. import schemas as s
from ..auth import current_token
from ..openapi import operation
from . import api


@api.get("/contracts/<contract>/overview")
@operation(summary="A contract's overview: amount to pay, meters, reading window", tag="contracts",
           right="bills:read", response=s.OVERVIEW)
def overview(contract: str) -> ResponseReturnValue:
    """Return the contract, its amount to pay (with the next due date) and the caller's rights on it; with
    ``meters:read`` also its meters, each with its last reading, and the reading window (open now until
    ``closes``, or the next one's ``opens``; Latvian holidays counted)."""
    grant = current_token().grant(contract)  # the declared right was checked before the view runs
    calls: list[tuple[str, str, tuple[Any, ...]]] = [("billing", "contract_overview", (contract,))]
    if Right.METERS_READ in grant.rights:
        calls.append(("metering", "meters_overview", (contract,)))
    billing, *metering = rpc.call_together(*calls)
    body = {**billing, "rights": sorted(grant.rights)}
    if metering:
        body.update(metering[0])
    return jsonify(body)
