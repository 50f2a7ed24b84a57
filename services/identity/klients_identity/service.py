"""Identity's nameko service (same package and database as the Flask app): the person's contact details
over RPC, and identity's events published from the outbox. Grant management joins it with the
access-management work."""

from __future__ import annotations

from typing import Any

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher
from nameko.rpc import rpc
from nameko.timer import timer

from klients_common.auth import LOA_ORDER, LOA_SUBSTANTIAL
from klients_common.errors import NotFound
from klients_common.nameko_auth import Authorization
from klients_common.nameko_db import Database
from klients_common.outbox import relay, relay_quietly

from . import contacts
from .models import Person, outbox


class IdentityService:
    """Identity on the bus."""

    name = "identity"

    db = Database()
    dispatch = EventDispatcher()
    auth = Authorization()
    config = Config()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def get_contact(self) -> dict[str, Any]:
        """Return the caller's own contact details (any valid token)."""
        person = self.db.get(Person, self.auth.person_id)
        if person is None:
            raise NotFound("person not found")
        return contacts.contact_out(self.db, person)

    @rpc
    def update_contact(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Change the caller's own contact details; a new e-mail waits for its link."""
        token = self.auth.token
        strong = LOA_ORDER.get(token.acr or "", 0) >= LOA_ORDER[LOA_SUBSTANTIAL]
        result = contacts.update(self.db, person_id=token.subject, changes=changes if isinstance(changes, dict)
                                 else {}, issuer_url=self.config["IDENTITY_ISSUER"], strong=strong)
        relay_quietly(self.db, outbox, self.dispatch)
        return result

    @timer(interval=1)
    def relay_outbox(self) -> None:
        """Publish identity's events (person registered, login, grant changes) written by the web app."""
        relay(self.db, outbox, self.dispatch)
