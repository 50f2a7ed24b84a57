"""Bills and payments (the seed's "pay bills, seeing the current amount to pay")."""

from __future__ import annotations

import base64

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from klients_common.grants import Right

from .. import rpc
from ..auth import current_token, token_required
from . import api, json_body


@api.get("/contracts/<contract>/balance")
@token_required
def balance(contract: str) -> ResponseReturnValue:
    """Return the current amount to pay, the overdue part, credit and open invoices (``bills:read``)."""
    current_token().require(contract, Right.BILLS_READ)
    return jsonify(rpc.call("billing", "get_balance", contract))


@api.get("/contracts/<contract>/invoices")
@token_required
def invoices(contract: str) -> ResponseReturnValue:
    """Return the contract's invoices, newest first (``bills:read``)."""
    current_token().require(contract, Right.BILLS_READ)
    return jsonify({"items": rpc.call("billing", "list_invoices", contract)})


@api.get("/contracts/<contract>/invoices/<number>")
@token_required
def invoice(contract: str, number: str) -> ResponseReturnValue:
    """Return one invoice with its lines (``bills:read``)."""
    current_token().require(contract, Right.BILLS_READ)
    return jsonify(rpc.call("billing", "get_invoice", contract, number))


@api.get("/contracts/<contract>/invoices/<number>/pdf")
@token_required
def invoice_pdf(contract: str, number: str) -> ResponseReturnValue:
    """Return the invoice as a PDF (``bills:read``); ``lang=lv`` (default) or ``en``."""
    current_token().require(contract, Right.BILLS_READ)
    lang = "en" if request.args.get("lang") == "en" else "lv"
    document = base64.b64decode(rpc.call("billing", "invoice_pdf", contract, number, lang))
    return Response(document, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{number}.pdf"'})


@api.post("/contracts/<contract>/payments")
@token_required
def start_payment(contract: str) -> ResponseReturnValue:
    """Start a payment of the amount due, or of ``{"amount": "12.34"}`` (``bills:pay``). Requires an
    ``Idempotency-Key`` header: the same key answers the first result again."""
    current_token().require(contract, Right.BILLS_PAY)
    body = json_body({"amount"}, required=set(), empty_allowed=True)
    payment = rpc.call("billing", "start_payment", contract, body, request.headers.get("Idempotency-Key", ""))
    replayed = payment.pop("replayed", False)
    response = jsonify(payment)
    response.status_code = 201
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get("/contracts/<contract>/payments/<payment>")
@token_required
def payment(contract: str, payment: str) -> ResponseReturnValue:
    """Return a payment's state (``bills:pay``)."""
    current_token().require(contract, Right.BILLS_PAY)
    return jsonify(rpc.call("billing", "get_payment", contract, payment))


@api.post("/payment-callbacks")
def payment_callback() -> ResponseReturnValue:
    """The payment provider's signed callback. No user token: billing checks the provider's signature."""
    body = request.get_data(cache=False, as_text=True)
    if len(body) > 16_384:
        return jsonify({"error": "too large"}), 413
    return jsonify(rpc.call("billing", "payment_callback", body, request.headers.get("Klients-Signature", "")))
