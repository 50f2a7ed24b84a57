"""The Keycloak staff realm as code: operators and supervisors who sign in to identity's operator pages.

Run ``python deploy/keycloak/staff_realm.py`` (``make run`` and the tests do) against a running
Keycloak. It is idempotent: every run brings the realm, its roles, client, mappers and demo users to
the state written here, whether they are missing, present, or changed by hand in the console.

Environment (defaults suit ``make run`` on one machine; production sets every one):

| variable | default |
|---|---|
| ``KEYCLOAK_URL`` | ``http://127.0.0.1:8080`` |
| ``KEYCLOAK_ADMIN_USER`` / ``KEYCLOAK_ADMIN_PASSWORD`` | ``admin`` / ``admin`` (the bootstrap admin) |
| ``STAFF_REALM`` | ``klients-staff`` |
| ``OPERATOR_CLIENT_SECRET`` | ``operator-pages-dev-secret`` |
| ``IDENTITY_ISSUER`` | ``http://127.0.0.1:8001`` (operator pages' redirect URIs live under it) |
| ``DEMO_OPERATOR_PASSWORD`` | ``operator-demo-1`` (``0`` = create no demo users) |
| ``SMTP_HOST`` / ``SMTP_PORT`` | ``127.0.0.1`` / ``8025`` |
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import requests
from keycloak import KeycloakAdmin

OPERATOR_CLIENT = "klients-operator-pages"
ROLES = {
    "operator": "Customer-service operator: records applications, manages grants on a holder's behalf",
    "supervisor": "Approves mandates longer than a year; everything an operator can do",
}


@dataclass(frozen=True)
class StaffRealm:
    """What the staff realm must look like."""

    realm: str = "klients-staff"
    client_secret: str = "operator-pages-dev-secret"
    identity_url: str = "http://127.0.0.1:8001"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    demo_password: str | None = "operator-demo-1"
    demo_users: tuple[tuple[str, str, str, tuple[str, ...]], ...] = field(default=(
        ("operator", "Olga", "Operatore", ("operator",)),
        ("supervisor", "Sandis", "Supervizors", ("operator", "supervisor")),
    ))

    @classmethod
    def from_env(cls) -> StaffRealm:
        """Read the desired state from the environment."""
        demo = os.environ.get("DEMO_OPERATOR_PASSWORD", "operator-demo-1")
        return cls(
            realm=os.environ.get("STAFF_REALM", "klients-staff"),
            client_secret=os.environ.get("OPERATOR_CLIENT_SECRET", "operator-pages-dev-secret"),
            identity_url=os.environ.get("IDENTITY_ISSUER", "http://127.0.0.1:8001").rstrip("/"),
            smtp_host=os.environ.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=int(os.environ.get("SMTP_PORT", "8025")),
            demo_password=None if demo == "0" else demo,
        )

    def issuer(self, keycloak_url: str) -> str:
        """Return the realm's token issuer URL."""
        return f"{keycloak_url.rstrip('/')}/realms/{self.realm}"


def admin_client(url: str | None = None) -> KeycloakAdmin:
    """Return an admin client logged in to the master realm as the bootstrap admin."""
    return KeycloakAdmin(
        server_url=(url or os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080")).rstrip("/") + "/",
        username=os.environ.get("KEYCLOAK_ADMIN_USER", "admin"),
        password=os.environ.get("KEYCLOAK_ADMIN_PASSWORD", "admin"),
        realm_name="master", user_realm_name="master", timeout=30,
    )


def realm_settings(spec: StaffRealm) -> dict[str, Any]:
    """Return the realm attributes we own."""
    return {
        "realm": spec.realm,
        "displayName": "${klientsStaffRealm}",  # in the page's language: DISPLAY_NAMES
        "displayNameHtml": "${klientsStaffRealm}",
        "enabled": True,
        "sslRequired": "external",
        "registrationAllowed": False,
        "resetPasswordAllowed": True,
        "loginWithEmailAllowed": True,
        "bruteForceProtected": True,
        "failureFactor": 5,
        "waitIncrementSeconds": 60,
        "maxFailureWaitSeconds": 900,
        "accessTokenLifespan": 300,
        "ssoSessionIdleTimeout": 1800,
        "ssoSessionMaxLifespan": 36000,
        "passwordPolicy": "length(12) and notUsername and notEmail",
        "internationalizationEnabled": True,
        "supportedLocales": ["lv", "en"],
        "defaultLocale": "lv",
        "smtpServer": {"host": spec.smtp_host, "port": str(spec.smtp_port), "from": "noreply@klients.lv",
                       "fromDisplayName": "Klients", "auth": "false", "ssl": "false", "starttls": "false"},
    }


def client_settings(spec: StaffRealm) -> dict[str, Any]:
    """Return the operator pages' OIDC client: confidential, code flow with PKCE S256 only."""
    return {
        "clientId": OPERATOR_CLIENT,
        "name": "Klients operator pages",
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "secret": spec.client_secret,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": [f"{spec.identity_url}/operator/callback"],
        "webOrigins": [spec.identity_url],
        # OpenID Connect Back-Channel Logout: every end of a staff session (sign-out, the console's Sessions
        # or a user's logout, expiry) is posted to identity, which ends its operator session at once.
        "frontchannelLogout": False,
        "attributes": {"pkce.code.challenge.method": "S256",
                       "post.logout.redirect.uris": f"{spec.identity_url}/operator/",
                       "backchannel.logout.url": f"{spec.identity_url}/operator/backchannel-logout",
                       "backchannel.logout.session.required": "true",
                       "backchannel.logout.revoke.offline.tokens": "false"},
    }


# The realm's name on its login pages, per language (realm localization texts, key ``klientsStaffRealm``).
DISPLAY_NAMES = {"lv": "Klients klientu apkalpošana", "en": "Klients customer service"}


def ensure_display_names(admin: KeycloakAdmin, realm: str) -> None:
    """Set the realm's localized display name (a PUT of the same text changes nothing)."""
    base = admin.connection.base_url.rstrip("/")
    for locale, text in DISPLAY_NAMES.items():
        requests.put(f"{base}/admin/realms/{realm}/localization/{locale}/klientsStaffRealm", data=text.encode(),
                     headers={"Authorization": f"Bearer {admin.connection.token['access_token']}",
                              "Content-Type": "text/plain; charset=utf-8"}, timeout=30).raise_for_status()


AUDIENCE_MAPPER = {
    "name": "operator-pages-audience",
    "protocol": "openid-connect",
    "protocolMapper": "oidc-audience-mapper",
    "config": {"included.client.audience": OPERATOR_CLIENT, "access.token.claim": "true",
               "id.token.claim": "false", "introspection.token.claim": "true"},
}


def provision(admin: KeycloakAdmin, spec: StaffRealm) -> None:
    """Bring the staff realm to the state ``spec`` describes."""
    admin.change_current_realm("master")
    if spec.realm not in {r["realm"] for r in admin.get_realms()}:
        admin.create_realm({"realm": spec.realm, "enabled": True}, skip_exists=True)
    admin.update_realm(spec.realm, realm_settings(spec))
    ensure_display_names(admin, spec.realm)
    admin.change_current_realm(spec.realm)

    for name, description in ROLES.items():
        admin.create_realm_role({"name": name, "description": description}, skip_exists=True)

    client_uuid = admin.get_client_id(OPERATOR_CLIENT)
    if client_uuid is None:
        client_uuid = admin.create_client(client_settings(spec), skip_exists=True)
    admin.update_client(client_uuid, client_settings(spec))
    mappers = {m["name"]: m for m in admin.get_mappers_from_client(client_uuid)}
    if AUDIENCE_MAPPER["name"] in mappers:
        existing = mappers[AUDIENCE_MAPPER["name"]]
        if existing.get("config") != AUDIENCE_MAPPER["config"]:
            admin.update_client_mapper(client_uuid, existing["id"], {**AUDIENCE_MAPPER, "id": existing["id"]})
    else:
        admin.add_mapper_to_client(client_uuid, AUDIENCE_MAPPER)

    if spec.demo_password:
        for username, first, last, roles in spec.demo_users:
            ensure_user(admin, username, first, last, roles, spec.demo_password)


def ensure_user(admin: KeycloakAdmin, username: str, first: str, last: str, roles: tuple[str, ...],
                password: str) -> str:
    """Create or reset a staff user with exactly ``roles`` among the staff roles."""
    user = {"username": username, "firstName": first, "lastName": last, "email": f"{username}@staff.klients.lv",
            "emailVerified": True, "enabled": True, "requiredActions": []}
    user_id = admin.get_user_id(username) or admin.create_user(user, exist_ok=True)
    admin.update_user(user_id, user)
    admin.set_user_password(user_id, password, temporary=False)
    have = {r["name"] for r in admin.get_realm_roles_of_user(user_id)} & set(ROLES)
    if missing := [admin.get_realm_role(r) for r in roles if r not in have]:
        admin.assign_realm_roles(user_id, missing)
    if extra := [admin.get_realm_role(r) for r in have - set(roles)]:
        admin.delete_realm_roles_of_user(user_id, extra)
    return user_id


if __name__ == "__main__":
    staff = StaffRealm.from_env()
    provision(admin_client(), staff)
    print(f"staff realm {staff.realm} provisioned; issuer {staff.issuer(os.environ.get('KEYCLOAK_URL', 'http://127.0.0.1:8080'))}")
