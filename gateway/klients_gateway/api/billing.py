"""Bills and payments: the amount to pay, invoices and their PDFs, paying (docs/api.md, "Paying")."""

from __future__ import annotations

import base64

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from .. import rpc
from .. import schemas as s
from ..openapi import operation, validated_body, validated_query
from . import api


@api.get("/contracts/<contract>/balance")
@operation(summary="The current amount to pay", tag="bills", right="bills:read", response=s.BALANCE)
def balance(contract: str) -> ResponseReturnValue:
    """Return the current amount to pay, the overdue part, credit and open invoices."""
    return jsonify(rpc.call("billing", "get_balance", contract))


@api.get("/contracts/<contract>/invoices")
@operation(summary="Invoices, newest first", tag="bills", right="bills:read", response=s.items(s.INVOICE))
def invoices(contract: str) -> ResponseReturnValue:
    """Return the contract's invoices, newest first."""
    return jsonify({"items": rpc.call("billing", "list_invoices", contract)})


@api.get("/contracts/<contract>/invoices/<number>")
@operation(summary="One invoice with its lines", tag="bills", right="bills:read", response=s.INVOICE)
def invoice(contract: str, number: str) -> ResponseReturnValue:
    """Return one invoice with its lines."""
    return jsonify(rpc.call("billing", "get_invoice", contract, number))


@api.get("/contracts/<contract>/invoices/<number>/pdf")
@operation(summary="An invoice as PDF", tag="bills", right="bills:read", query=s.PDF_QUERY, media="application/pdf")
def invoice_pdf(contract: str, number: str) -> ResponseReturnValue:
    """Return the invoice as a PDF; ``lang=lv`` (default) or ``en``."""
    lang = validated_query()["lang"]
    document = base64.b64decode(rpc.call("billing", "invoice_pdf", contract, number, lang))
    return Response(document, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{number}.pdf"'})


@api.post("/contracts/<contract>/payments")
@operation(summary="Start a payment", tag="bills", right="bills:pay", body=s.PAYMENT_START, body_optional=True,
           headers={"Idempotency-Key": ({"type": "string", "minLength": 8, "maxLength": 200}, True,
                                        "a key of your own; repeating it answers the first result again")},
           response=s.PAYMENT, status=201, errors=(409,))
def start_payment(contract: str) -> ResponseReturnValue:
    """Start a payment of the amount due, or of ``{"amount": "12.34"}``. Requires an ``Idempotency-Key``
    header: the same key answers the first result again."""
    body = validated_body()
    payment = rpc.call("billing", "start_payment", contract, body, request.headers.get("Idempotency-Key", ""))
    replayed = payment.pop("replayed", False)
    response = jsonify(payment)
    response.status_code = 201
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@api.get("/contracts/<contract>/payments/<payment>")
@operation(summary="A payment's state", tag="bills", right="bills:pay", response=s.PAYMENT)
def payment(contract: str, payment: str) -> ResponseReturnValue:
    """Return a payment's state."""
    return jsonify(rpc.call("billing", "get_payment", contract, payment))


@api.post("/payment-callbacks")
@operation(summary="The payment provider's signed callback", tag="provider", public=True,
           headers={"Klients-Signature": ({"type": "string"}, True, "HMAC of the body with the merchant key")},
           errors=(401, 404, 409, 413, 422))
def payment_callback() -> ResponseReturnValue:
    """The payment provider's signed callback. No user token: billing checks the provider's signature. At most
    16 KiB (the app's route limit: 413 before the body is read)."""
    body = request.get_data(cache=False, as_text=True)
    return jsonify(rpc.call("billing", "payment_callback", body, request.headers.get("Klients-Signature", "")))
