"""Identity's side of the Keycloak portal realm (Keycloak-fronted mode, docs/keycloak-fronted.md): its admin
client (identity's service account) and how a Keycloak user maps back to identity's person. Free of the bus,
so the web app (back-channel logouts, ``oidc``) and the grants sync (``keycloak_sync``) share it."""

from __future__ import annotations

from keycloak import KeycloakAdmin
from keycloak.exceptions import KeycloakError

SYNC_CLIENT = "klients-identity-sync"  # identity's service account in the realm (manage-users, view-users)
PORTAL_CLIENT = "klients-portal"  # the portal's client there: Keycloak's back-channel logout tokens name it in aud
PORTAL_CLIENTS = (PORTAL_CLIENT, "klients-portal-web")  # ... or the client portal's confidential one
IDP_ALIAS = "klients-identity"  # identity as the realm's identity provider


def admin_client(keycloak_url: str, realm: str, secret: str) -> KeycloakAdmin:
    """An admin client of the portal realm signed in as identity's service account (client credentials)."""
    return KeycloakAdmin(server_url=keycloak_url.rstrip("/") + "/", realm_name=realm, client_id=SYNC_CLIENT,
                         client_secret_key=secret, user_realm_name=realm, timeout=10)


def person_of_user(admin: KeycloakAdmin, user_id: str) -> str | None:
    """Return identity's person id behind a Keycloak user (the user's link to identity as its identity
    provider), or None for a user Keycloak does not know or that was never brokered from identity."""
    try:
        links = admin.get_user_social_logins(user_id)
    except KeycloakError as exc:
        if exc.response_code == 404:
            return None
        raise
    return next((str(link["userId"]) for link in links if link.get("identityProvider") == IDP_ALIAS), None)
