"""Money applied to invoices: payments settle the oldest open invoices first; what is left is credit,
applied to the next invoices as they are issued. The contract row is locked while money moves, so two
payments arriving at once cannot both settle the same euro."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Allocation, Contract, Invoice, Payment

OPEN = ("open", "partly_paid")


def lock_contract(*, db_session: Session, contract_id: int) -> Contract:
    """Return the contract, locked for the rest of the transaction (PostgreSQL ``FOR UPDATE``)."""
    return db_session.scalars(select(Contract).where(Contract.id == contract_id).with_for_update()).one()


def _settle(db_session: Session, contract: Contract, amount: Decimal, payment: Payment | None) -> Decimal:
    """Apply ``amount`` to open invoices, oldest due first; return what is left."""
    invoices = db_session.scalars(select(Invoice).where(Invoice.contract_id == contract.id,
                                                        Invoice.status.in_(OPEN))
                                  .order_by(Invoice.due_date, Invoice.id)).all()
    now = datetime.now(UTC)
    for invoice in invoices:
        if amount <= 0:
            break
        part = min(amount, invoice.total - invoice.paid)
        invoice.paid += part
        invoice.status = "paid" if invoice.paid == invoice.total else "partly_paid"
        db_session.add(Allocation(invoice_id=invoice.id, payment_id=payment.id if payment else None, amount=part,
                                  created_at=now))
        amount -= part
    return amount


def apply_payment(*, db_session: Session, payment: Payment) -> None:
    """Settle invoices with a received payment; keep the rest as the contract's credit."""
    contract = lock_contract(db_session=db_session, contract_id=payment.contract_id)
    contract.credit += _settle(db_session, contract, Decimal(payment.amount), payment)


def allocate_credit(*, db_session: Session, contract: Contract) -> None:
    """Apply the contract's credit to its open invoices."""
    contract = lock_contract(db_session=db_session, contract_id=contract.id)
    if contract.credit > 0:
        contract.credit = _settle(db_session, contract, Decimal(contract.credit), None)


def cancel_invoice(*, db_session: Session, invoice: Invoice) -> None:
    """Cancel an invoice; what was paid on it returns to credit and goes to the other open invoices."""
    contract = lock_contract(db_session=db_session, contract_id=invoice.contract_id)
    contract.credit += invoice.paid
    invoice.status = "cancelled"
    allocate_credit(db_session=db_session, contract=contract)
