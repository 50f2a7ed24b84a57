"""Identity's nameko service (same package and database as the Flask app): the person's contact details,
access management (users of a contract, invitations, the activity list) over RPC, and identity's events
published from the outbox.

Rights are checked twice: the token must give ``users:manage`` on the contract, and the caller's grant
must still be active in identity's own database (a mandate that ended or was revoked a moment ago is
refused even with a token minted before).
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from nameko.dependency_providers import Config
from nameko.timer import timer
from sqlalchemy import select
from sqlalchemy.orm import Session

from klients_common.assurance import LOA_ORDER, LOA_SUBSTANTIAL
from klients_common.bus import handler
from klients_common.db import as_utc, make_engine
from klients_common.errors import NotFound, ValidationFailed
from klients_common.grants import Right
from klients_common.nameko_auth import Authorization, rpc
from klients_common.nameko_db import Database
from klients_common.outbox import OutboxRelay, first_delivery
from klients_common.revocations import KEEP_SECONDS, RevocationsAtStart, TokenRevocationAware
from klients_common.riga import riga_today

from ..access import contacts
from ..access import grants as access
from ..models import Grant, Person, outbox, processed_events, utcnow
from ..oauth import revocation as token_revocation
from ..oauth.claims import live_grants

log = logging.getLogger(__name__)


def revocations_in_force(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Return the grant and token revocations a live access token could still be affected by."""
    since = utcnow() - timedelta(seconds=KEEP_SECONDS)
    rows = session.execute(select(Grant.person_id, Grant.contract, Grant.ended_at).where(
        Grant.ended_at >= since, Grant.person_id.is_not(None), Grant.status.in_(("revoked", "ended"))))
    return {"grants": [{"subject": person, "contract": contract, "revoked_at": as_utc(ended_at).isoformat()}
                       for person, contract, ended_at in rows],
            "tokens": token_revocation.in_force(session)}


class RevocationsFromDatabase(RevocationsAtStart):
    """Identity's own instances read the token revocations in force from their database at start (grants they
    check against the database on every call)."""

    def fetch(self) -> Any:
        """Return the token revocations in force."""
        engine = make_engine(self.container.config["DATABASE_URL"])
        try:
            with Session(engine) as session:
                return {"grants": [], "tokens": token_revocation.in_force(session)}
        finally:
            engine.dispose()


class IdentityService(TokenRevocationAware):
    """Identity on the bus."""

    name = "identity"

    revocations_at_start = RevocationsFromDatabase()
    db = Database()
    relay = OutboxRelay(outbox, interval=1.0)  # the web app's events too: published within a second
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
        self.relay.now()
        return result

    @rpc
    def revocations_in_force(self) -> dict[str, list[dict[str, Any]]]:
        """Grants revoked or ended and tokens revoked within the revocation window, for a billing or metering
        instance that is starting (by its broker user: no token involved)."""
        self.auth.require_component("billing", "metering")
        return revocations_in_force(self.db)

    @rpc
    def list_my_grants(self) -> list[dict[str, Any]]:
        """The caller's live grants from the database: all of them, also when there are more than a token
        carries (``grants_complete: false``)."""
        return [{"contract": g.contract, "role": g.role.value, "rights": sorted(g.rights), "until": g.until}
                for g in sorted(live_grants(self.db, self.auth.person_id), key=lambda g: g.contract)]

    # --- access management ----------------------------------------------------------------------------

    def _actor(self, contract: str, *, change: bool) -> access.Actor:
        """Return the caller as an actor on ``contract``: ``users:manage`` in the token and an active grant
        within its dates in the database; changes also need a substantial login (else step-up)."""
        self.auth.require(contract, Right.USERS_MANAGE)
        today = riga_today()
        grant = self.db.scalar(select(Grant).where(
            Grant.person_id == self.auth.person_id, Grant.contract == contract, Grant.status == "active",
            Grant.role.in_(("owner", "delegate"))))
        if grant is None or (grant.valid_until is not None and grant.valid_until < today) or (
                grant.valid_from is not None and grant.valid_from > today):
            raise NotFound(f"contract {contract} not found")
        if change:
            self.auth.require_acr(LOA_SUBSTANTIAL)
        return access.Actor(id=self.auth.person_id, role=grant.role)

    def _invitation_settings(self) -> dict[str, Any]:
        person = self.db.get(Person, self.auth.person_id)
        return {"link_base": self.config["IDENTITY_ISSUER"],
                "ttl": timedelta(hours=float(self.config.get("INVITATION_TTL_HOURS", 72))),
                "lang": person.language if person is not None else "lv"}

    @rpc
    def list_users(self, contract: str) -> list[dict[str, Any]]:
        """Everyone with, or invited to, access on the contract (``users:manage``)."""
        self._actor(contract, change=False)
        return access.list_users(self.db, contract)

    @rpc
    def add_user(self, contract: str, body: dict[str, Any]) -> dict[str, Any]:
        """Invite an additional user (or, by the holder, a delegate); ``users:manage`` at substantial."""
        actor = self._actor(contract, change=True)
        if not isinstance(body, dict):
            raise ValidationFailed("Send a JSON object.")
        new = access.validate_new_user(body)
        result = access.invite(self.db, actor, contract, new, auth_time=self.auth.token.claims.get("auth_time"),
                               **self._invitation_settings())
        self.relay.now()
        return result

    @rpc
    def change_user(self, contract: str, grant_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a sub-user's level or an end date."""
        actor = self._actor(contract, change=True)
        result = access.change(self.db, actor, contract, grant_id, body if isinstance(body, dict) else {})
        self.relay.now()
        return result

    @rpc
    def revoke_user(self, contract: str, grant_id: str) -> dict[str, Any]:
        """Cancel an invitation or revoke access; every service refuses the person's tokens for it at once."""
        actor = self._actor(contract, change=True)
        result = access.revoke(self.db, actor, contract, grant_id)
        self.relay.now()
        return result

    @rpc
    def resend_invitation(self, contract: str, grant_id: str) -> dict[str, Any]:
        """Send a fresh invitation link; the previous one stops working."""
        actor = self._actor(contract, change=True)
        result = access.resend(self.db, actor, contract, grant_id, **self._invitation_settings())
        self.relay.now()
        return result

    @rpc
    def contract_activity(self, contract: str) -> dict[str, Any]:
        """Who can access the contract, with what rights, until when, last login, and what was done."""
        self._actor(contract, change=False)
        return access.activity(self.db, contract)

    # --- what other services tell identity --------------------------------------------------------------

    @handler("contract_transferred")
    def on_contract_transferred(self, payload: Any) -> None:
        """End the previous holder's access and everything they granted; the new holder becomes owner (only
        billing's events reach here, matching their schema: see klients_common.bus)."""
        access.contract_transferred(self.db, payload["contract"], payload["holder_personal_code"])
        self.relay.now()

    @handler("reading_accepted")
    def on_reading_accepted(self, payload: Any) -> None:
        """A submitted reading goes on the contract's activity list (once per event)."""
        self._activity(payload, "reading_submitted", "submitted_by", "submitted_role",
                       meter=payload["meter"], value=payload["value"])

    @handler("payment_received")
    def on_payment_received(self, payload: Any) -> None:
        """A payment goes on the contract's activity list (once per event)."""
        self._activity(payload, "payment_made", "person", "role",
                       amount=payload["amount"])

    def _activity(self, payload: dict[str, Any], action: str, person_key: str, role_key: str, **detail: Any) -> None:
        if first_delivery(self.db, processed_events, payload["event_id"], action):
            access.record_activity(self.db, person=payload.get(person_key), contract=payload.get("contract"),
                                   action=action, role=payload.get(role_key), **detail)
        self.db.commit()

    @timer(interval=60)
    def end_ended_grants(self) -> None:
        """Close grants whose end date passed and tell services and the person."""
        if access.end_ended_grants(self.db):
            self.relay.soon()

