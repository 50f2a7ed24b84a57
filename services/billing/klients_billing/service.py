"""The billing nameko service: rights checked here, rules in the domain modules."""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select

from klients_common.auth import REGISTER_READ
from klients_common.bus import handler
from klients_common.errors import NotFound, Unavailable
from klients_common.grants import Right
from klients_common.nameko_auth import Authorization, rpc
from klients_common.nameko_db import Database, Reads
from klients_common.outbox import OutboxRelay
from klients_common.revocations import REVOCATIONS, RevocationAware

from . import consumers, invoicing, payments, register
from .balance import contract_with_open_invoices, summary
from .models import Contract, Invoice, outbox
from .pdf import render_invoice
from .provider import ProviderUnavailable
from .schemas import contract_out, invoice_out
from .settings import BILLING_RUN_CHECK_INTERVAL, OUTBOX_INTERVAL

log = logging.getLogger(__name__)


class BillingService(RevocationAware):
    """Client register, invoices, amount due, payments."""

    name = "billing"

    auth = Authorization()
    db = Database()
    reads = Reads()  # the read-only RPCs: Core statements, no session, no transaction
    config = Config()
    relay = OutboxRelay(outbox, OUTBOX_INTERVAL)

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    # --- the register -----------------------------------------------------------------------------

    @rpc
    def get_contract(self, contract: str) -> dict[str, Any]:
        """Return one contract the caller may read bills of."""
        grant = self.auth.require(contract, Right.BILLS_READ)
        return contract_out(register.read_contract_or_raise(self.reads, contract), grant.role)

    @rpc
    def contract_overview(self, contract: str) -> dict[str, Any]:
        """Return the contract and its current amount to pay together (``bills:read``): the overview's
        billing half in one call."""
        grant = self.auth.require(contract, Right.BILLS_READ)
        row, invoices = contract_with_open_invoices(self.reads, contract)
        balance = summary(row.number, row.credit, invoices)
        dues = [i["due_date"] for i in balance["open_invoices"] if Decimal(i["remaining"]) > 0]
        return {"contract": contract_out(row, grant.role),
                "balance": {**balance, "next_due_date": min(dues, default=None)}}

    @rpc
    def revoked_grants(self) -> list[str]:
        """The contracts of the caller's token whose grant was revoked after the token was issued (the
        gateway's ``/me`` leaves them out, as every contract-scoped call refuses them)."""
        token = self.auth.token
        return sorted(grant.contract for grant in token.live_grants()
                      if REVOCATIONS.revoked(token.subject, grant.contract, float(token.claims["iat"])))

    @rpc
    def list_contracts(self) -> list[dict[str, Any]]:
        """Return the contracts the caller holds a live grant on, with the caller's role (a grant revoked since
        the token was issued is left out, as every contract-scoped call refuses it)."""
        token = self.auth.token
        live = {grant.contract: grant.role for grant in token.live_grants()
                if not REVOCATIONS.revoked(token.subject, grant.contract, float(token.claims["iat"]))}
        if not live:
            return []
        rows = self.db.scalars(select(Contract).where(Contract.number.in_(live)).order_by(Contract.number))
        return [contract_out(row, live[row.number]) for row in rows]

    @rpc
    def contracts_of(self, personal_code: str) -> list[dict[str, Any]]:
        """Return the active contracts a personal code holds (identity only, with scope ``register:read``)."""
        self.auth.require_service("identity", REGISTER_READ)
        return register.contracts_of(db_session=self.db, personal_code=personal_code)

    @rpc
    def email_on_file(self, contract: str) -> str | None:
        """Return the register's e-mail for a contract (identity only, with scope ``register:read``)."""
        self.auth.require_service("identity", REGISTER_READ)
        return register.email_on_file(db_session=self.db, contract=contract)

    @rpc
    def register_entry(self, contract: str) -> dict[str, Any]:
        """Return the register's entry for a contract, holder included (identity's operator pages only:
        with scope ``register:read``)."""
        self.auth.require_service("identity", REGISTER_READ)
        row = register.get_contract_or_raise(db_session=self.db, number=str(contract).strip().upper())
        return {"number": row.number, "status": row.status, "holder_name": row.holder_name,
                "holder_personal_code": row.holder_personal_code, "supply_address": row.supply_address,
                "email": row.email, "start_date": row.start_date.isoformat() if row.start_date else None}

    # --- invoices and the amount due ----------------------------------------------------------------

    @rpc
    def get_balance(self, contract: str) -> dict[str, Any]:
        """Return the current amount to pay (``bills:read``)."""
        self.auth.require(contract, Right.BILLS_READ)
        row, invoices = contract_with_open_invoices(self.reads, contract)
        return summary(row.number, row.credit, invoices)

    @rpc
    def list_invoices(self, contract: str) -> list[dict[str, Any]]:
        """Return the contract's invoices, newest first (``bills:read``)."""
        self.auth.require(contract, Right.BILLS_READ)
        row = register.get_contract_or_raise(db_session=self.db, number=contract)
        invoices = self.db.scalars(select(Invoice).where(Invoice.contract_id == row.id)
                                   .order_by(Invoice.period.desc()))
        return [invoice_out(i, with_lines=False) for i in invoices]

    @rpc
    def get_invoice(self, contract: str, number: str) -> dict[str, Any]:
        """Return one invoice with its lines (``bills:read``)."""
        self.auth.require(contract, Right.BILLS_READ)
        return invoice_out(self._invoice(contract, number), with_lines=True)

    @rpc
    def invoice_pdf(self, contract: str, number: str, lang: str = "lv") -> str:
        """Return the invoice PDF, base64-encoded (``bills:read``)."""
        self.auth.require(contract, Right.BILLS_READ)
        invoice = self._invoice(contract, number)
        document = render_invoice(invoice, invoice.contract, self.config["SUPPLIER"], "en" if lang == "en" else "lv")
        return base64.b64encode(document).decode()

    def _invoice(self, contract: str, number: str) -> Invoice:
        row = register.get_contract_or_raise(db_session=self.db, number=contract)
        invoice = self.db.scalar(select(Invoice).where(Invoice.contract_id == row.id, Invoice.number == number))
        if invoice is None:
            raise NotFound(f"invoice {number} not found")
        return invoice

    # --- payments -----------------------------------------------------------------------------------

    @rpc
    def start_payment(self, contract: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Start paying the amount due or a chosen amount (``bills:pay``); same key, same answer."""
        grant = self.auth.require(contract, Right.BILLS_PAY)
        person = self.auth.person_id
        amount = payments.parse_amount(body.get("amount"))
        row = register.get_contract_or_raise(db_session=self.db, number=contract)
        earlier = payments.reserve_key(db_session=self.db, person_id=person, key=idempotency_key,
                                       fingerprint=payments.request_hash(contract, body))
        if earlier is not None:
            return {**earlier, "replayed": True}
        try:
            payment = payments.start_payment(
                db_session=self.db, provider=self.config["PAYMENT_PROVIDER"], contract=row, person_id=person,
                role=grant.role.value, amount=amount, return_url=self.config["PAYMENT_RETURN_URL"],
                callback_url=self.config["PAYMENT_CALLBACK_URL"])
        except ProviderUnavailable as exc:
            payments.release_key(db_session=self.db, person_id=person, key=idempotency_key)
            log.warning("payment provider unavailable: %s", exc)
            raise Unavailable("the payment provider is not answering; try again shortly") from None
        except BaseException:
            payments.release_key(db_session=self.db, person_id=person, key=idempotency_key)
            raise
        response = payments.payment_out(payment)
        payments.finish_key(db_session=self.db, person_id=person, key=idempotency_key, response=response)
        self.db.commit()
        return response

    @rpc
    def get_payment(self, contract: str, payment: str) -> dict[str, Any]:
        """Return a payment's state (``bills:pay``)."""
        self.auth.require(contract, Right.BILLS_PAY)
        row = register.get_contract_or_raise(db_session=self.db, number=contract)
        return payments.payment_out(payments.get_payment_or_raise(db_session=self.db, contract=row,
                                                                  payment_id=payment))

    @rpc
    def payment_callback(self, body: str, signature: str) -> dict[str, Any]:
        """Apply the provider's signed callback (authenticated by its signature, not by a user token)."""
        try:
            payment = payments.take_callback(db_session=self.db, secret=self.config["PAYMENT_PROVIDER"].callback_secret,
                                             body=body.encode(), signature=signature)
            self.db.commit()
        except BaseException:
            self.db.rollback()
            raise
        self.relay.now()
        return {"payment": payment.id, "status": payment.status}

    # --- events -------------------------------------------------------------------------------------

    @handler("reading_accepted")
    def on_reading_accepted(self, payload: Any) -> None:
        """Keep the accepted reading's consumption for the billing run (once per event id; the bus has checked
        the producer and the payload's schema)."""
        consumers.record_reading(db_session=self.db, payload=payload)
        self.db.commit()

    @timer(interval=BILLING_RUN_CHECK_INTERVAL)
    def monthly_billing_run(self) -> None:
        """From ``BILLING_RUN_DAY`` of each month, invoice the previous month (once, whatever the instances)."""
        if invoicing.scheduled_run(db_session=self.db, now=datetime.now(UTC), run_day=self.config["BILLING_RUN_DAY"]):
            self.relay.soon()

    @timer(interval=3600)
    def forget_old_idempotency_keys(self) -> None:
        """Delete idempotency keys older than two days (they are kept at least 24 hours)."""
        payments.forget_old_keys(db_session=self.db, now=datetime.now(UTC))
        self.db.commit()
