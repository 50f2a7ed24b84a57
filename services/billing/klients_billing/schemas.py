"""What billing's RPC methods return: plain dicts shaped for the gateway."""

from __future__ import annotations

from typing import Any

from .models import Contract


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
