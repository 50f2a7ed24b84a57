"""What billing's RPC methods return: plain dicts shaped for the gateway."""

from __future__ import annotations

from typing import Any

from .models import Contract, Invoice


def contract_out(contract: Contract, role: str) -> dict[str, Any]:
    """Return a contract as the caller may see it (never the holder's personal code)."""
    return {
        "number": contract.number,
        "holder_name": contract.holder_name,
        "supply_address": contract.supply_address,
        "status": contract.status,
        "start_date": contract.start_date.isoformat(),
        "end_date": contract.end_date.isoformat() if contract.end_date else None,
        "role": role,
    }


def invoice_out(invoice: Invoice, *, with_lines: bool) -> dict[str, Any]:
    """Return an invoice as the API shows it; amounts as strings in euros."""
    out: dict[str, Any] = {
        "number": invoice.number, "period": invoice.period, "issue_date": invoice.issue_date.isoformat(),
        "due_date": invoice.due_date.isoformat(), "net": f"{invoice.net:.2f}", "vat": f"{invoice.vat:.2f}",
        "total": f"{invoice.total:.2f}", "paid": f"{invoice.paid:.2f}", "remaining": f"{invoice.remaining:.2f}",
        "currency": "EUR", "status": invoice.status, "estimated": invoice.estimated,
        "consumption_kwh": f"{invoice.consumption_kwh:.3f}",
    }
    if with_lines:
        out["vat_rate"] = f"{invoice.vat_rate:.4f}"
        out["lines"] = [{"kind": line.kind, "quantity": f"{line.quantity:.3f}", "unit": line.unit,
                         "unit_price": f"{line.unit_price:.6f}", "amount": f"{line.amount:.2f}"}
                        for line in invoice.lines]
    return out
