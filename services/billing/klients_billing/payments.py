"""Payments: start one with an ``Idempotency-Key``, take the provider's signed callback, settle invoices.

Idempotency (per person and key, kept at least 24 hours): the first request reserves the key in its own
committed transaction; a repeat with the same body gets the first answer again, a repeat with a
different body is refused (422), and a repeat while the first is still running gets 409. A callback is
applied at most once: a payment that is already ``received`` ignores any later callback; a late
``succeeded`` after ``cancelled`` still counts (the money was taken).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from klients_common.errors import Conflict, NotFound, ValidationFailed
from klients_common.outbox import enqueue

from .allocation import apply_payment, lock_contract
from .balance import amount_due
from .models import Contract, IdempotencyKey, Payment, outbox
from .provider import PaymentProvider, verify_callback

log = logging.getLogger(__name__)

MAX_AMOUNT = Decimal("10000.00")
KEY = re.compile(r"^[\x21-\x7e]{8,128}$")
AMOUNT = re.compile(r"^[0-9]{1,7}(\.[0-9]{1,2})?$")
KEEP_KEYS = timedelta(hours=48)


def _bad(field: str, code: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {"errors": [{"field": field, "code": code, "message": message}]})


def parse_amount(raw: Any) -> Decimal | None:
    """Return the chosen amount (None: pay what is due), or raise ValidationFailed."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _bad("amount", "not_money", "amount is a sum in euros, e.g. \"12.34\"")
    text = f"{raw}" if not isinstance(raw, float) else repr(raw)
    if not AMOUNT.match(text):
        raise _bad("amount", "not_money", "amount is a positive sum in euros with at most two decimals")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise _bad("amount", "not_money", "amount is a sum in euros") from exc
    if amount <= 0:
        raise _bad("amount", "not_positive", "amount must be more than zero")
    if amount > MAX_AMOUNT:
        raise _bad("amount", "too_large", f"one payment is at most {MAX_AMOUNT} EUR")
    return amount


def request_hash(contract: str, body: dict[str, Any]) -> str:
    """Return a fingerprint of a payment request."""
    return hashlib.sha256(json.dumps({"contract": contract, "body": body}, sort_keys=True).encode()).hexdigest()


def reserve_key(*, db_session: Session, person_id: str, key: str, fingerprint: str) -> dict[str, Any] | None:
    """Reserve ``key`` for this request; return the stored answer of an earlier identical request, or None.

    Raises ValidationFailed for a malformed key or a key reused with another body, Conflict while the first
    request with this key is still running."""
    if not KEY.match(key or ""):
        raise _bad("Idempotency-Key", "bad_key", "send an Idempotency-Key header of 8-128 printable characters")
    try:
        db_session.execute(insert(IdempotencyKey).values(person_id=person_id, key=key, request_hash=fingerprint,
                                                         status="in_progress", created_at=datetime.now(UTC)))
        db_session.commit()
        return None
    except IntegrityError:
        db_session.rollback()
    earlier = db_session.get(IdempotencyKey, (person_id, key), populate_existing=True)
    if earlier is None:  # removed a moment ago (the first attempt failed): let the client retry
        raise Conflict("a request with this Idempotency-Key just failed; retry")
    if earlier.request_hash != fingerprint:
        raise ValidationFailed("this Idempotency-Key was used for a different request",
                               {"code": "idempotency_key_reused"})
    if earlier.status != "done" or earlier.response is None:
        raise Conflict("a request with this Idempotency-Key is still being processed")
    return earlier.response


def finish_key(*, db_session: Session, person_id: str, key: str, response: dict[str, Any]) -> None:
    """Store the answer for repeats of this key."""
    row = db_session.get(IdempotencyKey, (person_id, key))
    if row is not None:
        row.status, row.response = "done", response


def release_key(*, db_session: Session, person_id: str, key: str) -> None:
    """Forget a reservation whose request failed before doing anything, so the client can retry."""
    db_session.rollback()
    db_session.execute(delete(IdempotencyKey).where(IdempotencyKey.person_id == person_id, IdempotencyKey.key == key))
    db_session.commit()


def forget_old_keys(*, db_session: Session, now: datetime) -> int:
    """Delete keys older than two days; return how many."""
    result = db_session.execute(delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEEP_KEYS))
    return int(result.rowcount or 0)


def start_payment(*, db_session: Session, provider: PaymentProvider, contract: Contract, person_id: str,
                  amount: Decimal | None, return_url: str, callback_url: str, role: str | None = None) -> Payment:
    """Create a payment for ``amount`` (or the amount due) and register it with the provider."""
    if amount is None:
        amount = Decimal(amount_due(db_session=db_session, contract=contract)["amount_due"])
        if amount <= 0:
            raise ValidationFailed("There is nothing to pay on this contract.", {"code": "nothing_due"})
    payment = Payment(id=str(uuid.uuid4()), contract_id=contract.id, person_id=person_id, role=role,
                      amount=amount, status="pending", created_at=datetime.now(UTC))
    db_session.add(payment)
    db_session.flush()
    created = provider.create(merchant_reference=payment.id, amount=amount,
                              description=f"Klients {contract.number}", return_url=return_url,
                              callback_url=callback_url)
    payment.provider_payment_id = created.id
    payment.redirect_url = created.redirect_url
    return payment


def take_callback(*, db_session: Session, secret: str, body: bytes, signature: str) -> Payment:
    """Verify and apply a provider callback (once); return the payment."""
    try:
        payload = verify_callback(secret, body, signature)
    except Exception:
        log.warning("payment callback refused: signature or payload invalid (%d bytes)", len(body))
        raise
    payment = db_session.get(Payment, payload["merchant_reference"])
    if payment is None or payment.provider_payment_id != str(payload.get("id")):
        log.warning("payment callback for an unknown payment %r refused", payload.get("merchant_reference"))
        raise NotFound("unknown payment")
    lock_contract(db_session=db_session, contract_id=payment.contract_id)
    db_session.refresh(payment)
    if Decimal(str(payload["amount"])) != payment.amount or payload.get("currency") != "EUR":
        log.warning("payment callback for %s with amount %s %s refused (expected %s EUR)", payment.id,
                    payload["amount"], payload.get("currency"), payment.amount)
        raise ValidationFailed("callback amount does not match the payment")
    if payment.status == "received":
        return payment  # a repeat: nothing changes
    if payload["status"] == "cancelled":
        if payment.status == "pending":
            payment.status, payment.completed_at = "cancelled", datetime.now(UTC)
        return payment
    if payment.status == "cancelled":
        log.warning("payment %s succeeded after it was cancelled: taking the money", payment.id)
    payment.status, payment.completed_at = "received", datetime.now(UTC)
    apply_payment(db_session=db_session, payment=payment)
    contract = db_session.get(Contract, payment.contract_id)
    enqueue(db_session, outbox, "payment_received", {
        "payment": payment.id, "contract": contract.number if contract else None, "amount": str(payment.amount),
        "person": payment.person_id, "role": payment.role, "received_at": payment.completed_at.isoformat(),
        "email": contract.email if contract else None})
    return payment


def get_payment_or_raise(*, db_session: Session, contract: Contract, payment_id: str) -> Payment:
    """Return the contract's payment, or raise NotFound."""
    payment = db_session.scalar(select(Payment).where(Payment.id == payment_id, Payment.contract_id == contract.id))
    if payment is None:
        raise NotFound(f"payment {payment_id} not found")
    return payment


def payment_out(payment: Payment) -> dict[str, Any]:
    """Return a payment as the API shows it."""
    return {"id": payment.id, "amount": f"{payment.amount:.2f}", "currency": "EUR", "status": payment.status,
            "redirect_url": payment.redirect_url, "created_at": payment.created_at.isoformat(),
            "completed_at": payment.completed_at.isoformat() if payment.completed_at else None}
