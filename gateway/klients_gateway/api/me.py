"""The caller and their contracts."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from .. import rpc
from .. import schemas as s
from ..auth import current_token
from ..openapi import operation, validated_body
from . import api


@api.get("/me")
@operation(summary="The caller and their grants", tag="me", response=s.ME)
def me() -> ResponseReturnValue:
    """Return the caller and their live grants (from the verified token, less those revoked since it was
    issued: the services' revocation list, asked of billing)."""
    token = current_token()
    complete = token.claims.get("grants_complete", True) is not False
    if complete:
        revoked = set(rpc.call("billing", "revoked_grants"))
        grants = [{"contract": g.contract, "role": g.role.value, "rights": sorted(g.rights), "until": g.until}
                  for g in sorted(token.live_grants(), key=lambda g: g.contract) if g.contract not in revoked]
    else:  # more than a token carries: identity has them all, from its database
        grants = rpc.call("identity", "list_my_grants")
    return jsonify({"id": token.subject, "acr": token.acr, "grants": grants, "token_grants_complete": complete})


@api.get("/contracts")
@operation(summary="Contracts the caller may see", tag="contracts", response=s.items(s.CONTRACT))
def contracts() -> ResponseReturnValue:
    """Return the contracts the caller may see, with their role. For a person with more grants than a token
    carries (``grants_complete: false``), the ones beyond the token are listed by number and role only: ask
    for a contract-scoped token (``resource=urn:klients:contract:<number>``) to see one in full."""
    items = rpc.call("billing", "list_contracts")
    if current_token().claims.get("grants_complete", True) is False:
        shown = {item["number"] for item in items}
        items += [{"number": g["contract"], "role": g["role"], "details": "ask for a contract-scoped token"}
                  for g in rpc.call("identity", "list_my_grants") if g["contract"] not in shown]
    return jsonify({"items": items})


@api.get("/contracts/<contract>")
@operation(summary="One contract", tag="contracts", right="bills:read", response=s.CONTRACT)
def contract(contract: str) -> ResponseReturnValue:
    """Return one contract."""
    return jsonify(rpc.call("billing", "get_contract", contract))


@api.get("/me/contact")
@operation(summary="The caller's contact details", tag="me", response=s.CONTACT)
def contact() -> ResponseReturnValue:
    """Return the caller's contact details (and an e-mail change waiting for its link)."""
    return jsonify(rpc.call("identity", "get_contact"))


@api.patch("/me/contact")
@operation(summary="Change contact details", tag="me", body=s.CONTACT_PATCH, response=s.CONTACT,
           errors=(403,))
def update_contact() -> ResponseReturnValue:
    """Change e-mail, phone (any format, stored E.164), postal address or language; a new e-mail is used
    only after the link sent to it is opened."""
    changes = validated_body()
    return jsonify(rpc.call("identity", "update_contact", changes))
