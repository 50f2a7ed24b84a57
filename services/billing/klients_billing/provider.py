"""The payment provider connector (production code; the simulator in ``klients_simulators.payments``
speaks the same protocol).

Protocol, after the common shape of hosted-payment-page providers:

* ``POST {base}/v1/payments`` with HTTP Basic (merchant id, API key) and JSON ``{amount, currency,
  merchant_reference, description, return_url, callback_url}`` → ``201 {id, status, redirect_url}``.
  The payer is sent to ``redirect_url`` and confirms or cancels there.
* The provider then POSTs JSON ``{id, merchant_reference, amount, currency, status: succeeded|cancelled,
  created}`` to ``callback_url`` with the header ``Klients-Signature: t=<unix time>,v1=<hex>`` where
  ``v1 = HMAC-SHA256(callback secret, "<t>.<raw body>")``. It may send a callback more than once, and late.
* ``GET {base}/v1/payments/{id}`` answers the payment's current status (for reconciliation).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from klients_common import constant_time
from klients_common.errors import Unauthenticated, ValidationFailed

SIGNATURE_TOLERANCE_SECONDS = 300


class ProviderUnavailable(Exception):
    """The provider could not be reached or refused the request."""


@dataclass(frozen=True)
class ProviderPayment:
    """The provider's side of a payment."""

    id: str
    redirect_url: str


@dataclass(frozen=True)
class PaymentProvider:
    """A configured provider account."""

    base_url: str
    merchant_id: str
    api_key: str
    callback_secret: str
    timeout: float = 10.0

    def create(self, *, merchant_reference: str, amount: Decimal, description: str, return_url: str,
               callback_url: str) -> ProviderPayment:
        """Create the payment at the provider; return where to send the payer."""
        try:
            response = requests.post(
                f"{self.base_url.rstrip('/')}/v1/payments", auth=(self.merchant_id, self.api_key), timeout=self.timeout,
                json={"amount": f"{amount:.2f}", "currency": "EUR", "merchant_reference": merchant_reference,
                      "description": description, "return_url": return_url, "callback_url": callback_url})
        except requests.RequestException as exc:
            raise ProviderUnavailable(str(exc)) from exc
        if response.status_code != 201:
            raise ProviderUnavailable(f"provider answered {response.status_code}")
        body = response.json()
        return ProviderPayment(id=str(body["id"]), redirect_url=str(body["redirect_url"]))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """Return the ``Klients-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_callback(secret: str, body: bytes, header: str, *, now: float | None = None) -> dict[str, Any]:
    """Return the callback's payload if its signature is right and recent; raise otherwise."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("callback signature missing or malformed") from exc
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not constant_time.equal(expected, given):
        raise Unauthenticated("callback signature does not match")
    if abs((now or time.time()) - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
        raise Unauthenticated("callback signature too old")
    try:
        payload = json.loads(body)
        Decimal(str(payload["amount"]))
        if payload["status"] not in ("succeeded", "cancelled") or not isinstance(payload["merchant_reference"], str):
            raise ValueError(payload["status"])
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise ValidationFailed("callback payload malformed") from exc
    return payload
