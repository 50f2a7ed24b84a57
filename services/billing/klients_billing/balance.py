"""The current amount to pay: open invoices' remaining amounts, the overdue part, credit, as of now.

One indexed query per contract (``ix_invoices_contract_open``), whatever the size of the register."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from klients_common.riga import RIGA

from .models import Contract, Invoice

# Built once (the statement's construction and cache key cost more than its execution per call).
_OPEN_INVOICES = (
    select(Invoice.number, Invoice.period, Invoice.due_date, Invoice.total, Invoice.paid, Invoice.status)
    .where(Invoice.contract_id == bindparam("contract_id"), Invoice.status.in_(("open", "partly_paid")))
    .order_by(Invoice.due_date, Invoice.id))


def amount_due(*, db_session: Session, contract: Contract, now: datetime | None = None) -> dict[str, Any]:
    """Return what the contract owes now."""
    now = now or datetime.now(UTC)
    today = now.astimezone(RIGA).date()
    rows = db_session.execute(_OPEN_INVOICES, {"contract_id": contract.id}).all()
    due = sum((r.total - r.paid for r in rows), Decimal("0.00"))
    overdue = sum((r.total - r.paid for r in rows if r.due_date < today), Decimal("0.00"))
    credit = Decimal(contract.credit)
    return {
        "contract": contract.number, "currency": "EUR",
        "amount_due": f"{max(due - credit, Decimal(0)):.2f}", "overdue": f"{overdue:.2f}",
        "credit": f"{max(credit - due, Decimal(0)):.2f}",
        "open_invoices": [{"number": r.number, "period": r.period, "due_date": r.due_date.isoformat(),
                           "total": f"{r.total:.2f}", "remaining": f"{r.total - r.paid:.2f}",
                           "overdue": r.due_date < today, "status": r.status} for r in rows],
        "as_of": now.isoformat(),
    }
