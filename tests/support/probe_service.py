"""A nameko service used only by the tests, to prove context data reaches downstream RPC and events.

``probe.relay(contract)`` calls billing over RPC and dispatches an event, each time without passing the
token explicitly; the event handler calls billing again and records what billing answered in a file
(``PROBE_OUTBOX``), so the test sees the token travel request → RPC → event → RPC.
"""

from __future__ import annotations

from klients_common.green import patch

if __name__ == "__main__":
    patch()

import json
import os
from pathlib import Path
from typing import Any

from nameko.events import EventDispatcher, event_handler
from nameko.rpc import RpcProxy, rpc

from klients_common.errors import KlientsError
from klients_common.nameko_auth import Authorization


class ProbeService:
    """Relays calls to billing to show what arrives downstream."""

    name = "probe"
    auth = Authorization()
    billing = RpcProxy("billing")
    dispatch = EventDispatcher()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def relay(self, contract: str, tag: str) -> dict[str, Any]:
        """Call billing as the caller, then dispatch ``relayed`` for the event leg."""
        result = self.billing.get_contract(contract)
        self.dispatch("relayed", {"contract": contract, "tag": tag})
        return result

    @event_handler("probe", "relayed")
    def on_relayed(self, payload: dict[str, Any]) -> None:
        """Call billing again from the event handler and record the outcome."""
        try:
            outcome = {"ok": self.billing.get_contract(payload["contract"])["number"],
                       "subject": self.auth.person_id}
        except KlientsError as exc:
            outcome = {"error": type(exc).__name__}
        Path(os.environ["PROBE_OUTBOX"], payload["tag"]).write_text(json.dumps(outcome))


if __name__ == "__main__":
    from klients_common.green import run_services
    from klients_common.settings import nameko_config

    # A test-only service: it runs as the broker's administrator and declares its own exchange (it is not a
    # component of the system, so it has no broker identity of its own).
    run_services(nameko_config("probe", DECLARE_EVENT_EXCHANGES=True), ProbeService)
