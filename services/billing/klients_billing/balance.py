"""The current amount to pay: open invoices' remaining amounts, the overdue part, credit, as of now.

One indexed query per contract (``ix_invoices_contract_open``), whatever the size of the register. The read-only
RPCs (the balance, the contract, the overview) take the contract and its open invoices in one statement on an
autocommit connection (``contract_with_open_invoices``); a payment computes the amount inside its transaction
(``amount_due``). Both summarise through ``summary``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import Session

from klients_common.errors import NotFound
from klients_common.nameko_db import Reader
from klients_common.riga import RIGA

from .models import Contract, Invoice

OPEN = ("open", "partly_paid")
_INVOICE_COLUMNS = (Invoice.number.label("invoice"), Invoice.period, Invoice.due_date, Invoice.total, Invoice.paid,
                    Invoice.status.label("invoice_status"))

# Built once (the statement's construction and cache key cost more than its execution per call).
_OPEN_INVOICES = (
    select(*_INVOICE_COLUMNS)
    .where(Invoice.contract_id == bindparam("contract_id"), Invoice.status.in_(OPEN))
    .order_by(Invoice.due_date, Invoice.id))

# The contract (every column) and its open invoices, one row per invoice, one row with NULL invoice columns when
# it has none, no row when there is no such contract.
_CONTRACT_WITH_OPEN_INVOICES = (
    select(*Contract.__table__.c, *_INVOICE_COLUMNS)
    .select_from(Contract)
    .outerjoin(Invoice, and_(Invoice.contract_id == Contract.id, Invoice.status.in_(OPEN)))
    .where(Contract.number == bindparam("number"))
    .order_by(Invoice.due_date, Invoice.id))


def contract_with_open_invoices(reads: Reader, number: str) -> tuple[Any, list[Any]]:
    """Return the contract's row (the register's columns) and its open invoices' rows, oldest due first, in one
    statement; raise NotFound if there is no such contract."""
    rows = reads.all(_CONTRACT_WITH_OPEN_INVOICES, {"number": number})
    if not rows:
        raise NotFound(f"contract {number} not found")
    return rows[0], [r for r in rows if r.invoice is not None]


def amount_due(*, db_session: Session, contract: Contract, now: datetime | None = None) -> dict[str, Any]:
    """Return what the contract owes now (inside the session's transaction)."""
    rows = db_session.execute(_OPEN_INVOICES, {"contract_id": contract.id}).all()
    return summary(contract.number, contract.credit, rows, now)


def summary(number: str, credit: Decimal, rows: Sequence[Any], now: datetime | None = None) -> dict[str, Any]:
    """Return what a contract with ``credit`` owes now, given its open invoices' rows."""
    now = now or datetime.now(UTC)
    today = now.astimezone(RIGA).date()
    due = sum((r.total - r.paid for r in rows), Decimal("0.00"))
    overdue = sum((r.total - r.paid for r in rows if r.due_date < today), Decimal("0.00"))
    credit = Decimal(credit)
    return {
        "contract": number, "currency": "EUR",
        "amount_due": f"{max(due - credit, Decimal(0)):.2f}", "overdue": f"{overdue:.2f}",
        "credit": f"{max(credit - due, Decimal(0)):.2f}",
        "open_invoices": [{"number": r.invoice, "period": r.period, "due_date": r.due_date.isoformat(),
                           "total": f"{r.total:.2f}", "remaining": f"{r.total - r.paid:.2f}",
                           "overdue": r.due_date < today, "status": r.invoice_status} for r in rows],
        "as_of": now.isoformat(),
    }
