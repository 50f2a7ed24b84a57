"""Users of a contract (docs/access.md): additional users, authorised persons, invitations, and the
contract's activity list. Identity decides (its RPC checks ``users:manage`` in the token, that the
caller's grant is still live, and ``acr`` ≥ substantial for changes); the gateway checks the right first
so a caller without it never reaches the bus."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from .. import rpc
from .. import schemas as s
from ..openapi import operation, validated_body
from . import api


@api.get("/contracts/<contract>/users")
@operation(summary="Users of a contract", tag="users", right="users:manage", response=s.items(s.USER))
def list_users(contract: str) -> ResponseReturnValue:
    """Everyone with, or invited to, access on the contract, with status."""
    return jsonify({"items": rpc.call("identity", "list_users", contract)})


@api.post("/contracts/<contract>/users")
@operation(summary="Invite a user (or grant a mandate)", tag="users", right="users:manage", step_up=True,
           body=s.NEW_USER, response=s.USER, status=201, errors=(409,))
def add_user(contract: str) -> ResponseReturnValue:
    """Invite an additional user (``level`` bills or bills_readings, optional personal code and end date);
    the holder may also grant a mandate online (``role: delegate``, personal code and end date required)."""
    body = validated_body()
    return jsonify(rpc.call("identity", "add_user", contract, body)), 201


@api.patch("/contracts/<contract>/users/<grant>")
@operation(summary="Change a user's level or end date", tag="users", right="users:manage", step_up=True,
           body=s.CHANGE_USER, response=s.USER, errors=(409,))
def change_user(contract: str, grant: str) -> ResponseReturnValue:
    """Change an additional user's level or an end date."""
    body = validated_body()
    return jsonify(rpc.call("identity", "change_user", contract, grant, body))


@api.delete("/contracts/<contract>/users/<grant>")
@operation(summary="Cancel an invitation or revoke access", tag="users", right="users:manage", step_up=True,
           response=s.USER, errors=(409,))
def revoke_user(contract: str, grant: str) -> ResponseReturnValue:
    """Cancel an invitation or revoke access (at once, at every service)."""
    return jsonify(rpc.call("identity", "revoke_user", contract, grant))


@api.post("/contracts/<contract>/users/<grant>/resend")
@operation(summary="Resend an invitation", tag="users", right="users:manage", step_up=True, response=s.USER,
           errors=(409,))
def resend_invitation(contract: str, grant: str) -> ResponseReturnValue:
    """Send a fresh invitation link with a new deadline; the previous link stops working."""
    return jsonify(rpc.call("identity", "resend_invitation", contract, grant))


@api.get("/contracts/<contract>/activity")
@operation(summary="Who can access the contract and what was done", tag="users", right="users:manage",
           response=s.ACTIVITY)
def activity(contract: str) -> ResponseReturnValue:
    """Who can access the contract (rights, until when, last login) and what was done on it."""
    return jsonify(rpc.call("identity", "contract_activity", contract))
