"""A payment provider simulator speaking the protocol of ``klients_billing.provider``.

* ``POST /v1/payments`` (HTTP Basic: merchant id and API key) creates a payment and answers its
  ``redirect_url``; ``GET /v1/payments/<id>`` answers its status.
* ``GET /pay/<id>`` is the payer's page: the amount, the merchant, **Confirm** and **Cancel**. Either
  button sends the signed callback (``Klients-Signature: t=…,v1=HMAC-SHA256(secret, "t.body")``) to the
  merchant's ``callback_url`` (retried with back-off if the merchant does not answer 2xx) and returns the
  payer to ``return_url``.
* ``POST /test/payments/<id>/callbacks`` with ``{"mode": "duplicate" | "tampered" | "late", "delay": s}``
  makes the provider misbehave as real ones do: the same signed callback twice, a callback whose body was
  changed after signing, or one sent late. It answers the merchant's HTTP statuses.

Configuration: ``SIM_MERCHANT_ID``, ``SIM_API_KEY``, ``SIM_CALLBACK_SECRET`` (defaults match billing's
development defaults). State is in memory: it is a simulator.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

import requests
from flask import Flask, Response, abort, jsonify, redirect, render_template_string, request

PAGE = """<!doctype html><html lang="lv"><head><meta charset="utf-8"><title>SimPay</title></head>
<body><main><h1>SimPay</h1>
<p>{{ p.description }}</p><p>Summa / Amount: <strong>{{ p.amount }} {{ p.currency }}</strong></p>
{% if p.status == "pending" %}
<form method="post"><button name="action" value="confirm">Apstiprināt / Confirm</button>
<button name="action" value="cancel">Atcelt / Cancel</button></form>
{% else %}<p>Status: {{ p.status }}</p>{% endif %}
</main></body></html>"""


@dataclass
class SimPayment:
    """A payment as the provider sees it."""

    id: str
    amount: str
    currency: str
    merchant_reference: str
    description: str
    return_url: str
    callback_url: str
    status: str = "pending"
    created: int = 0


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """Return the header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, "sha256").hexdigest()
    return f"t={timestamp},v1={mac}"


def create_app() -> Flask:
    """Create the simulator."""
    app = Flask(__name__)
    merchant = (os.environ.get("SIM_MERCHANT_ID", "klients"), os.environ.get("SIM_API_KEY", "dev-api-key"))
    secret = os.environ.get("SIM_CALLBACK_SECRET", "dev-callback-secret")
    payments: dict[str, SimPayment] = {}
    lock = threading.Lock()

    def callback_body(p: SimPayment) -> bytes:
        return json.dumps({"id": p.id, "merchant_reference": p.merchant_reference, "amount": p.amount,
                           "currency": p.currency, "status": "succeeded" if p.status == "paid" else "cancelled",
                           "created": p.created}).encode()

    def send(p: SimPayment, body: bytes, header: str) -> int:
        try:
            return requests.post(p.callback_url, data=body, timeout=10, headers={
                "Content-Type": "application/json", "Klients-Signature": header}).status_code
        except requests.RequestException:
            return 0

    def deliver(p: SimPayment) -> None:
        """Send the callback, retrying in the background like a real provider when the merchant fails."""
        body = callback_body(p)
        status = send(p, body, signature(secret, body, int(time.time())))
        if 200 <= status < 300:
            return

        def retry() -> None:
            for pause in (1, 2, 4, 8):
                time.sleep(pause)
                if 200 <= send(p, body, signature(secret, body, int(time.time()))) < 300:
                    return

        threading.Thread(target=retry, daemon=True).start()

    @app.post("/v1/payments")
    def create() -> Any:
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != merchant:
            return jsonify({"error": "unauthorized"}), 401
        body = request.get_json(silent=True) or {}
        try:
            amount = Decimal(str(body["amount"]))
            fields = {k: str(body[k]) for k in ("merchant_reference", "description", "return_url", "callback_url")}
        except (KeyError, InvalidOperation):
            return jsonify({"error": "invalid_request"}), 400
        if amount <= 0 or body.get("currency") != "EUR":
            return jsonify({"error": "invalid_request"}), 400
        payment = SimPayment(id=f"sp_{uuid.uuid4().hex}", amount=f"{amount:.2f}", currency="EUR",
                             created=int(time.time()), **fields)
        with lock:
            payments[payment.id] = payment
        return jsonify({"id": payment.id, "status": payment.status,
                        "redirect_url": f"{request.host_url.rstrip('/')}/pay/{payment.id}"}), 201

    @app.get("/v1/payments/<payment_id>")
    def status(payment_id: str) -> Any:
        payment = payments.get(payment_id) or abort(404)
        return jsonify(asdict(payment))

    @app.get("/pay/<payment_id>")
    def page(payment_id: str) -> Any:
        return render_template_string(PAGE, p=payments.get(payment_id) or abort(404))

    @app.post("/pay/<payment_id>")
    def decide(payment_id: str) -> Any:
        payment = payments.get(payment_id) or abort(404)
        with lock:
            if payment.status != "pending":
                abort(409)
            payment.status = "paid" if request.form.get("action") == "confirm" else "cancelled"
        deliver(payment)
        outcome = "succeeded" if payment.status == "paid" else "cancelled"
        return redirect(f"{payment.return_url}?{urlencode({'payment': payment.merchant_reference, 'status': outcome})}")

    @app.post("/test/payments/<payment_id>/callbacks")
    def misbehave(payment_id: str) -> Response:
        payment = payments.get(payment_id) or abort(404)
        if payment.status == "pending":
            abort(409)
        mode = (request.get_json(silent=True) or {}).get("mode")
        delay = float((request.get_json(silent=True) or {}).get("delay", 0))
        body = callback_body(payment)
        header = signature(secret, body, int(time.time()))
        if mode == "duplicate":
            statuses = [send(payment, body, header), send(payment, body, header)]
        elif mode == "tampered":
            forged = body.replace(f'"amount": "{payment.amount}"'.encode(), b'"amount": "0.01"')
            statuses = [send(payment, forged, header)]
        elif mode == "late":
            time.sleep(delay)
            statuses = [send(payment, body, signature(secret, body, int(time.time())))]
        else:
            abort(400)
        return jsonify({"statuses": statuses})

    return app
