"""The metering nameko service."""

from __future__ import annotations

from typing import Any

from nameko.rpc import rpc
from sqlalchemy import select

from klients_common.grants import Right
from klients_common.nameko_auth import Authorization
from klients_common.nameko_db import Database

from .models import Meter


class MeteringService:
    """Meters, readings and consumption history."""

    name = "metering"

    auth = Authorization()
    db = Database()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def list_meters(self, contract: str) -> list[dict[str, Any]]:
        """Return the meters of a contract the caller may read meters of."""
        self.auth.require(contract, Right.METERS_READ)
        rows = self.db.scalars(select(Meter).where(Meter.contract == contract).order_by(Meter.installed_on))
        return [
            {"serial_number": m.serial_number, "type": m.meter_type, "digits": m.digits, "unit": m.unit,
             "installed_on": m.installed_on.isoformat(),
             "removed_on": m.removed_on.isoformat() if m.removed_on else None}
            for m in rows
        ]
