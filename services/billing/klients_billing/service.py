"""The billing nameko service."""

from __future__ import annotations

import logging
from typing import Any

from nameko.events import event_handler
from nameko.rpc import rpc
from sqlalchemy import select

from klients_common.errors import NotFound
from klients_common.grants import Right
from klients_common.nameko_auth import Authorization
from klients_common.nameko_db import Database

from . import consumers
from .models import Contract
from .schemas import contract_out

log = logging.getLogger(__name__)


class BillingService:
    """Client register, invoices, amount due, payments."""

    name = "billing"

    auth = Authorization()
    db = Database()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def get_contract(self, contract: str) -> dict[str, Any]:
        """Return one contract the caller may read bills of."""
        grant = self.auth.require(contract, Right.BILLS_READ)
        row = self.db.scalar(select(Contract).where(Contract.number == contract))
        if row is None:
            raise NotFound(f"contract {contract} not found")
        return contract_out(row, grant.role)

    @rpc
    def list_contracts(self) -> list[dict[str, Any]]:
        """Return the contracts the caller holds a live grant on, with the caller's role."""
        live = {grant.contract: grant.role for grant in self.auth.token.live_grants()}
        if not live:
            return []
        rows = self.db.scalars(select(Contract).where(Contract.number.in_(live)).order_by(Contract.number))
        return [contract_out(row, live[row.number]) for row in rows]


    @event_handler("metering", "reading_accepted", requeue_on_error=True)
    def on_reading_accepted(self, payload: Any) -> None:
        """Keep the accepted reading's consumption for the billing run (once per event id)."""
        if not consumers.valid_reading_event(payload):
            # A malformed event will not get better by retrying: log it and let it go.
            log.error("malformed reading_accepted event dropped: %r", payload)
            return
        consumers.record_reading(db_session=self.db, payload=payload)
        self.db.commit()
