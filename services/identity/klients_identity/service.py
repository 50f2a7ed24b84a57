"""Identity's nameko service (same package and database as the Flask app): it publishes identity's
events from the outbox; grant management over RPC joins it with the access-management work."""

from __future__ import annotations

from nameko.events import EventDispatcher
from nameko.rpc import rpc
from nameko.timer import timer

from klients_common.nameko_db import Database
from klients_common.outbox import relay

from .models import outbox


class IdentityService:
    """Identity on the bus."""

    name = "identity"

    db = Database()
    dispatch = EventDispatcher()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @timer(interval=1)
    def relay_outbox(self) -> None:
        """Publish identity's events (person registered, login, grant changes) written by the web app."""
        relay(self.db, outbox, self.dispatch)
