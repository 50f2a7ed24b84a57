"""The caller and their contracts."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from klients_common.grants import Right

from .. import rpc
from .. import schemas as s
from ..auth import current_token, token_required
from ..openapi import operation, validated_body
from . import api


@api.get("/me")
@operation(summary="The caller and their grants", tag="me", response=s.ME)
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
@operation(summary="Contracts the caller may see", tag="contracts", response=s.items(s.CONTRACT))
@token_required
def contracts() -> ResponseReturnValue:
    """Return the contracts the caller may see, with their role."""
    return jsonify({"items": rpc.call("billing", "list_contracts")})


@api.get("/contracts/<contract>")
@operation(summary="One contract", tag="contracts", right="bills:read", response=s.CONTRACT)
@token_required
def contract(contract: str) -> ResponseReturnValue:
    """Return one contract (``bills:read``)."""
    current_token().require(contract, Right.BILLS_READ)
    return jsonify(rpc.call("billing", "get_contract", contract))


@api.get("/me/contact")
@operation(summary="The caller's contact details", tag="me", response=s.CONTACT)
@token_required
def contact() -> ResponseReturnValue:
    """Return the caller's contact details (and an e-mail change waiting for its link)."""
    return jsonify(rpc.call("identity", "get_contact"))


@api.patch("/me/contact")
@operation(summary="Change contact details", tag="me", body=s.CONTACT_PATCH, response=s.CONTACT,
           errors=(403,))
@token_required
def update_contact() -> ResponseReturnValue:
    """Change e-mail, phone (any format, stored E.164), postal address or language; a new e-mail is used
    only after the link sent to it is opened."""
    changes = validated_body()
    return jsonify(rpc.call("identity", "update_contact", changes))
