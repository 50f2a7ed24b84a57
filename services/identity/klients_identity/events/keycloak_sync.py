"""Keycloak-fronted mode: identity keeps each brokered person's ``grants`` attribute in Keycloak's portal
realm in step with their grants here, so the next Keycloak token (a login or a refresh) carries them.

The ``KeycloakSyncService`` listens to identity's own grant events (on its own queues, so nothing is
lost while Keycloak or this service is down: an event stays on the bus until its sync succeeds). Each
event recomputes the person's current grants from identity's database and writes them whole, so
repeated, late or reordered deliveries converge. A person Keycloak has never seen has nothing to update
(their first brokered login brings the grants in identity's ID token).

Keycloak silently drops attributes its user profile does not declare, so every write is read back; an
undeclared attribute is reported (``UndeclaredAttribute``) instead of passing for a success.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from requests.exceptions import RequestException

from klients_common.bus import Transient, handler
from klients_common.grants import grants_claim
from klients_common.nameko_db import Database

from ..oauth.claims import live_grants
from ..oauth.keycloak_portal import admin_client
from ..oauth.tokens import MAX_GRANTS_IN_TOKEN

log = logging.getLogger(__name__)


class UndeclaredAttribute(RuntimeError):
    """Keycloak accepted a write but did not keep the attribute: its user profile does not declare it."""


def write_attribute(admin: KeycloakAdmin, user_id: str, name: str, value: str) -> None:
    """Set one attribute of a user and read it back; raise UndeclaredAttribute if Keycloak dropped it."""
    user = admin.get_user(user_id)
    attributes = dict(user.get("attributes") or {})
    attributes[name] = [value]
    admin.update_user(user_id, {"attributes": attributes, "username": user["username"],
                                "email": user.get("email"), "firstName": user.get("firstName"),
                                "lastName": user.get("lastName")})
    stored = (admin.get_user(user_id).get("attributes") or {}).get(name)
    if stored != [value]:
        raise UndeclaredAttribute(f"Keycloak did not keep the attribute {name!r}: declare it in the realm's "
                                  "user profile (deploy/keycloak/portal_realm.py does)")


def grants_value(session: Any, person_id: str) -> str:
    """Return the person's live grants as the JSON the portal realm's token mapper parses."""
    grants = sorted(live_grants(session, person_id), key=lambda g: g.contract)[:MAX_GRANTS_IN_TOKEN]
    return json.dumps(grants_claim(grants), separators=(",", ":"), sort_keys=True)


def sync_person(admin: KeycloakAdmin, session: Any, person_id: str) -> bool:
    """Write the person's grants to their Keycloak user; False if Keycloak has no such user yet."""
    user_id = admin.get_user_id(person_id)
    if user_id is None:
        return False
    write_attribute(admin, user_id, "grants", grants_value(session, person_id))
    return True


class KeycloakAdminProvider(DependencyProvider):
    """One admin client per service instance, signed in as the service account (client credentials)."""

    admin: KeycloakAdmin | None = None

    def setup(self) -> None:
        config = self.container.config
        self.options = (config["KEYCLOAK_URL"], config["PORTAL_REALM"], config["KEYCLOAK_SYNC_SECRET"])

    def get_dependency(self, worker_ctx: Any) -> KeycloakAdmin:
        if self.admin is None:
            self.admin = admin_client(*self.options)
        return self.admin


class KeycloakSyncService:
    """Grant changes in identity → the ``grants`` attribute of the person's Keycloak user."""

    name = "identity_keycloak_sync"

    db = Database()
    keycloak = KeycloakAdminProvider()
    config = Config()

    def _sync(self, payload: Any) -> None:
        person = payload.get("subject")
        if not person or person in ("register", "system"):
            return  # not about a person (e.g. a change to an invitation nobody has taken up yet)
        try:
            synced = sync_person(self.keycloak, self.db, person)
        except (KeycloakError, RequestException, UndeclaredAttribute) as exc:
            log.warning("grants sync for an event %s failed (%s); it will be tried again",
                        payload.get("event_id"), type(exc).__name__)
            raise Transient(f"Keycloak: {type(exc).__name__}") from exc
        finally:
            self.db.rollback()
        log.info("grants synced to Keycloak for event %s" if synced else
                 "event %s: the person has no Keycloak user yet", payload.get("event_id"))

    @handler("grant_added")
    def on_grant_added(self, payload: Any) -> None:
        """A grant appeared (register sync, operator)."""
        self._sync(payload)

    @handler("grant_revoked")
    def on_grant_revoked(self, payload: Any) -> None:
        """A grant was revoked or ended."""
        self._sync(payload)

    @handler("invitation_accepted")
    def on_invitation_accepted(self, payload: Any) -> None:
        """An invitation became an active grant."""
        self._sync(payload)

    @handler("user_changed")
    def on_user_changed(self, payload: Any) -> None:
        """A level or an end date changed."""
        self._sync(payload)
