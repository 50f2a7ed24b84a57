"""Paying bills end to end: gateway → billing → the payment provider simulator's page → its signed
callback → allocation; idempotency keys; duplicate, late and tampered callbacks; concurrent payments."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal

import pytest
import requests
from sqlalchemy import func, select

from klients_billing import invoicing, payments
from klients_billing.models import Allocation, Contract, IdempotencyKey, Invoice, MeteredConsumption, outbox
from klients_common.errors import Conflict, ValidationFailed
from tests.support.helpers import bearer
from tests.support.stack import wait_until


@pytest.fixture
def billed(billing_sessions, new_contract, mint):
    """A contract with one open invoice, and its owner's token."""
    contract = new_contract()
    with billing_sessions() as session:
        session.add(MeteredConsumption(contract=contract.number, meter="M", period="2030-01", reading_id=1,
                                       consumption_m3=100, consumption_kwh=Decimal("1055"), source="customer",
                                       read_on=date(2030, 1, 28), submitted_at=date(2030, 1, 28)))
        invoice = invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id),
                                          period="2030-01", issue_date=date(2030, 2, 3))
        session.commit()
    return contract, invoice, mint({contract.number: "owner"}, subject=f"p-{uuid.uuid4().hex[:8]}")


def start(gateway, contract, token, key, body=None):
    return gateway.post(f"/api/v1/contracts/{contract.number}/payments", json=body if body is not None else {},
                        headers=bearer(token, key))


def payer_decides(redirect_url, action="confirm"):
    page = requests.get(redirect_url, timeout=10)
    assert page.status_code == 200 and "Confirm" in page.text
    return requests.post(redirect_url, data={"action": action}, allow_redirects=False, timeout=10)


def payment_status(gateway, contract, token, payment_id):
    return gateway.get(f"/api/v1/contracts/{contract.number}/payments/{payment_id}",
                       headers=bearer(token)).get_json()["status"]


def test_holder_pays_the_amount_due_and_it_drops_to_zero(gateway, billed, billing_sessions):
    contract, invoice, token = billed
    balance = gateway.get(f"/api/v1/contracts/{contract.number}/balance", headers=bearer(token)).get_json()
    assert balance["amount_due"] == f"{invoice.total:.2f}" and balance["currency"] == "EUR"

    started = start(gateway, contract, token, "key-happy-path")
    assert started.status_code == 201
    payment = started.get_json()
    assert (payment["amount"], payment["status"]) == (f"{invoice.total:.2f}", "pending")

    back = payer_decides(payment["redirect_url"])
    assert back.status_code == 302 and "status=succeeded" in back.headers["Location"]
    wait_until("payment received", lambda: payment_status(gateway, contract, token, payment["id"]) == "received",
               timeout=10)
    balance = gateway.get(f"/api/v1/contracts/{contract.number}/balance", headers=bearer(token)).get_json()
    assert (balance["amount_due"], balance["open_invoices"]) == ("0.00", [])
    with billing_sessions() as session:
        events = [p for p in session.execute(select(outbox.c.payload).where(
            outbox.c.event_type == "payment_received")).scalars() if p["payment"] == payment["id"]]
        assert [e["amount"] for e in events] == [f"{invoice.total:.2f}"]


def test_cancelled_on_the_provider_page_pays_nothing(gateway, billed):
    contract, invoice, token = billed
    payment = start(gateway, contract, token, "key-cancelled", {"amount": "10.00"}).get_json()
    assert "status=cancelled" in payer_decides(payment["redirect_url"], "cancel").headers["Location"]
    wait_until("cancelled", lambda: payment_status(gateway, contract, token, payment["id"]) == "cancelled")
    balance = gateway.get(f"/api/v1/contracts/{contract.number}/balance", headers=bearer(token)).get_json()
    assert balance["amount_due"] == f"{invoice.total:.2f}"


def test_same_key_replays_the_first_answer_and_another_body_is_refused(gateway, billed):
    contract, _, token = billed
    first = start(gateway, contract, token, "key-replay-1", {"amount": "12.34"})
    again = start(gateway, contract, token, "key-replay-1", {"amount": "12.34"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = start(gateway, contract, token, "key-replay-1", {"amount": "99.99"})
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"


def test_keys_are_scoped_per_person(gateway, billed, mint):
    contract, _, token = billed
    sub_user = mint({contract.number: ("subuser", "bills")}, subject="p-another")
    mine = start(gateway, contract, token, "key-shared-word", {"amount": "5.00"}).get_json()
    theirs = start(gateway, contract, sub_user, "key-shared-word", {"amount": "5.00"}).get_json()
    assert mine["id"] != theirs["id"]


def test_a_concurrent_duplicate_gets_409(billing_sessions):
    fingerprint = payments.request_hash("C", {"amount": "1.00"})
    with billing_sessions() as first, billing_sessions() as second:
        assert payments.reserve_key(db_session=first, person_id="p-409", key="key-concurrent-1",
                                    fingerprint=fingerprint) is None
        with pytest.raises(Conflict):
            payments.reserve_key(db_session=second, person_id="p-409", key="key-concurrent-1",
                                 fingerprint=fingerprint)
        with pytest.raises(ValidationFailed):
            payments.reserve_key(db_session=second, person_id="p-409", key="key-concurrent-1",
                                 fingerprint=payments.request_hash("C", {"amount": "2.00"}))


def test_concurrent_requests_with_one_key_create_one_payment(gateway_url, billed, billing_sessions):
    contract, _, token = billed
    url = f"{gateway_url}/api/v1/contracts/{contract.number}/payments"

    def send(_):
        return requests.post(url, json={"amount": "7.00"}, headers=bearer(token, "key-race-condition"), timeout=30)

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(send, range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409} and 201 in statuses
    ids = {a.json()["id"] for a in answers if a.status_code == 201}
    assert len(ids) == 1


@pytest.mark.parametrize(("body", "headers", "field"), [
    ({"amount": "-5"}, True, "amount"),
    ({"amount": "0"}, True, "amount"),
    ({"amount": "12.345"}, True, "amount"),
    ({"amount": "10000.01"}, True, "amount"),
    ({"amount": "abc"}, True, "amount"),
    ({"amount": True}, True, "amount"),
    ({"amount": "5", "contract": "LVG-100001"}, True, "contract"),
    ({"amount": "5"}, False, "Idempotency-Key"),
])
def test_bad_payment_requests_get_422_and_create_nothing(gateway, billed, billing_sessions, body, headers, field):
    contract, _, token = billed
    response = gateway.post(f"/api/v1/contracts/{contract.number}/payments", json=body,
                            headers=bearer(token, f"key-{uuid.uuid4()}" if headers else None))
    assert response.status_code == 422
    assert field in {e["field"] for e in response.get_json()["errors"]}
    with billing_sessions() as session:
        from klients_billing.models import Payment

        assert session.scalar(select(func.count()).select_from(Payment)
                              .where(Payment.contract_id == contract.id)) == 0


def test_subuser_of_another_contract_cannot_see_or_pay(gateway, billed, mint):
    contract, _, _ = billed
    stranger = mint({"LVG-100001": ("subuser", "bills")})
    assert gateway.get(f"/api/v1/contracts/{contract.number}/balance", headers=bearer(stranger)).status_code == 404
    assert start(gateway, contract, stranger, "key-stranger-1", {"amount": "5.00"}).status_code == 404


def simulator_callbacks(payment_id, mode, **extra):
    return requests.post(f"http://127.0.0.1:18090/test/payments/{payment_id}/callbacks",
                         json={"mode": mode, **extra}, timeout=30).json()["statuses"]


def provider_id(redirect_url):
    return redirect_url.rsplit("/", 1)[-1]


def allocated(billing_sessions, invoice):
    with billing_sessions() as session:
        return session.scalar(select(func.sum(Allocation.amount)).where(Allocation.invoice_id == invoice.id))


def test_duplicate_late_and_tampered_callbacks_change_nothing(gateway, billed, billing_sessions):
    contract, invoice, token = billed
    payment = start(gateway, contract, token, "key-callbacks-1").get_json()
    payer_decides(payment["redirect_url"])
    wait_until("received", lambda: payment_status(gateway, contract, token, payment["id"]) == "received")
    assert allocated(billing_sessions, invoice) == invoice.total

    assert simulator_callbacks(provider_id(payment["redirect_url"]), "duplicate") == [200, 200]
    assert simulator_callbacks(provider_id(payment["redirect_url"]), "late", delay=1) == [200]
    assert simulator_callbacks(provider_id(payment["redirect_url"]), "tampered") == [401]
    assert allocated(billing_sessions, invoice) == invoice.total
    with billing_sessions() as session:
        assert session.get(Invoice, invoice.id).status == "paid"
        assert session.get(Contract, contract.id).credit == 0


def test_tampered_callback_before_the_real_one_is_refused(gateway, billed, billing_sessions):
    contract, invoice, token = billed
    payment = start(gateway, contract, token, "key-tampered-first").get_json()
    body = (b'{"id": "%s", "merchant_reference": "%s", "amount": "%s", "currency": "EUR", "status": "succeeded",'
            b' "created": 1}' % (provider_id(payment["redirect_url"]).encode(), payment["id"].encode(),
                                 payment["amount"].encode()))
    forged = requests.post("http://127.0.0.1:18000/api/v1/payment-callbacks", data=body, timeout=10,
                           headers={"Klients-Signature": f"t={int(time.time())},v1={'0' * 64}"})
    unsigned = requests.post("http://127.0.0.1:18000/api/v1/payment-callbacks", data=body, timeout=10)
    assert (forged.status_code, unsigned.status_code) == (401, 401)
    assert payment_status(gateway, contract, token, payment["id"]) == "pending"
    assert allocated(billing_sessions, invoice) is None


def test_two_payments_of_the_full_amount_settle_the_invoice_once_and_leave_credit(gateway, billed,
                                                                                 billing_sessions):
    contract, invoice, token = billed
    first = start(gateway, contract, token, "key-double-1").get_json()
    second = start(gateway, contract, token, "key-double-2").get_json()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(payer_decides, [first["redirect_url"], second["redirect_url"]]))
    for payment in (first, second):
        wait_until("both received", lambda p=payment: payment_status(gateway, contract, token, p["id"]) == "received")
    assert allocated(billing_sessions, invoice) == invoice.total
    balance = gateway.get(f"/api/v1/contracts/{contract.number}/balance", headers=bearer(token)).get_json()
    assert (balance["amount_due"], balance["credit"]) == ("0.00", f"{invoice.total:.2f}")


def test_old_idempotency_keys_are_forgotten_after_two_days_not_before(billing_sessions):
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with billing_sessions() as session:
        for key, age in (("key-old-forgotten", timedelta(hours=49)), ("key-day-old-kept", timedelta(hours=25))):
            session.add(IdempotencyKey(person_id="p-keys", key=key, request_hash="x", status="done", response={},
                                       created_at=now - age))
        session.commit()
        payments.forget_old_keys(db_session=session, now=now)
        session.commit()
        kept = set(session.scalars(select(IdempotencyKey.key).where(IdempotencyKey.person_id == "p-keys")))
    assert kept == {"key-day-old-kept"}
