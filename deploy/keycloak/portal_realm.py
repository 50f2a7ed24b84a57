"""The Keycloak portal realm as code (the "Keycloak-fronted" deployment, docs/keycloak-fronted.md).

Keycloak issues the portal's tokens; the four login methods stay in identity, which Keycloak brokers to as
an OpenID Connect identity provider. The grants reach Keycloak's tokens twice over:

* at each login, through identity's ID token (scope ``grants``): an identity-provider mapper imports the
  ``grants`` claim into the user attribute ``grants`` (sync mode FORCE);
* whenever a grant changes, identity writes the attribute through the admin API (its service account
  ``klients-identity-sync`` may manage users, nothing else);

and a protocol mapper puts the attribute into the access token as JSON, beside ``sub`` (identity's person
id: the username), ``acr``/``amr`` (identity's, kept as session notes), ``auth_time`` and audience
``klients-api`` — the claim layout identity uses, so billing, metering and the gateway enforce the same
claim whichever issuer signed it.

Two clients carry those claims: ``klients-portal`` (public, PKCE) and ``klients-portal-web``, the client
portal's own (``portal/``, ``PORTAL_TOKEN_ISSUER=keycloak``): confidential (``client_secret_basic`` with the
portal's ``PORTAL_CLIENT_SECRET``), PKCE S256, redirect URI ``<PORTAL_URL>/callback``, post-logout URI
``<PORTAL_URL>/``. Both clients' back-channel logout URL is identity's ``/backchannel-logout/portal``: every
end of a portal session (sign-out, the console's Sign out, expiry) ends the person's logins at identity too
(and the portal's session ends at its next refresh, which Keycloak then refuses).

Run ``python deploy/keycloak/portal_realm.py``. Each run compares the realm with this file and changes only
what differs (it prints what it changed: nothing on a second run); a realm edited by hand is brought back.

| variable | default |
|---|---|
| ``KEYCLOAK_URL`` | ``http://127.0.0.1:8080`` |
| ``KEYCLOAK_ADMIN_USER`` / ``KEYCLOAK_ADMIN_PASSWORD`` | ``admin`` / ``admin`` |
| ``PORTAL_REALM`` | ``klients-portal`` |
| ``IDENTITY_ISSUER`` | ``http://127.0.0.1:8001`` (identity as Keycloak's identity provider) |
| ``KEYCLOAK_BROKER_SECRET`` | dev secret of Keycloak's client ``keycloak-broker`` at identity |
| ``KEYCLOAK_SYNC_SECRET`` | dev secret of identity's service account ``klients-identity-sync`` here |
| ``PORTAL_REDIRECT_URIS`` | ``http://127.0.0.1:3000/callback`` |
| ``PORTAL_WEB_REDIRECT_URIS`` | ``<PORTAL_URL>/callback`` (``http://127.0.0.1:3000/callback``) |
| ``PORTAL_CLIENT_SECRET`` | the file ``<KLIENTS_VAR_DIR>/portal-client-secret`` (the portal's secret at identity) |
| ``SMTP_HOST`` / ``SMTP_PORT`` | ``127.0.0.1`` / ``8025`` |
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, replace
from typing import Any

from keycloak import KeycloakAdmin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from staff_realm import admin_client

IDP_ALIAS = "klients-identity"
PORTAL_CLIENT = "klients-portal"
PORTAL_WEB_CLIENT = "klients-portal-web"  # the portal (portal/, a server-side app): confidential
SYNC_CLIENT = "klients-identity-sync"
BROKER_CLIENT = "keycloak-broker"  # Keycloak's client id at identity
API_AUDIENCE = "klients-api"
GRANTS_ATTRIBUTE = "grants"
FIRST_LOGIN_FLOW = "klients first broker login"


@dataclass(frozen=True)
class PortalRealm:
    """What the portal realm must look like."""

    realm: str = "klients-portal"
    identity_url: str = "http://127.0.0.1:8001"
    broker_secret: str = "keycloak-broker-dev-secret"
    sync_secret: str = "identity-sync-dev-secret"
    redirect_uris: tuple[str, ...] = ("http://127.0.0.1:3000/callback",)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    extra_attributes: tuple[str, ...] = field(default=())
    web_redirect_uris: tuple[str, ...] = ("http://127.0.0.1:3000/callback",)
    web_secret: str = ""  # empty: the portal's own (read when the realm is provisioned)

    @classmethod
    def from_env(cls) -> PortalRealm:
        """Read the desired state from the environment."""
        return cls(
            realm=os.environ.get("PORTAL_REALM", "klients-portal"),
            identity_url=os.environ.get("IDENTITY_ISSUER", "http://127.0.0.1:8001").rstrip("/"),
            broker_secret=os.environ.get("KEYCLOAK_BROKER_SECRET", "keycloak-broker-dev-secret"),
            sync_secret=os.environ.get("KEYCLOAK_SYNC_SECRET", "identity-sync-dev-secret"),
            redirect_uris=tuple(os.environ.get("PORTAL_REDIRECT_URIS", "http://127.0.0.1:3000/callback").split()),
            smtp_host=os.environ.get("SMTP_HOST", "127.0.0.1"),
            smtp_port=int(os.environ.get("SMTP_PORT", "8025")),
            web_redirect_uris=tuple(os.environ.get("PORTAL_WEB_REDIRECT_URIS", os.environ.get(
                "PORTAL_URL", "http://127.0.0.1:3000").rstrip("/") + "/callback").split()),
        )

    def issuer(self, keycloak_url: str) -> str:
        """Return the realm's token issuer URL."""
        return f"{keycloak_url.rstrip('/')}/realms/{self.realm}"

    def broker_redirect_uri(self, keycloak_url: str) -> str:
        """Return where identity sends the browser back to Keycloak (register it at identity)."""
        return f"{self.issuer(keycloak_url)}/broker/{IDP_ALIAS}/endpoint"


def _portal_secret() -> str:
    """The portal's client secret: ``PORTAL_CLIENT_SECRET``, else the file identity's ``migrate`` wrote."""
    configured = os.environ.get("PORTAL_CLIENT_SECRET", "")
    if configured:
        return configured
    var = os.environ.get("KLIENTS_VAR_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "var"))
    path = os.path.join(var, "portal-client-secret")
    if not os.path.exists(path):
        return ""
    with open(path) as secret:
        return secret.read().strip()


def covers(desired: Any, current: Any) -> bool:
    """Return whether ``current`` already has every value of ``desired`` (dicts compared key by key)."""
    if isinstance(desired, dict):
        return isinstance(current, dict) and all(covers(v, current.get(k)) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(current, list) and len(desired) == len(current) and all(
            covers(d, c) for d, c in zip(desired, current, strict=True))
    return bool(desired == current)


# --- desired state -------------------------------------------------------------------------------------------

def realm_settings(spec: PortalRealm) -> dict[str, Any]:
    """Realm attributes we own."""
    return {
        "realm": spec.realm, "displayName": "Klients", "enabled": True, "sslRequired": "external",
        "registrationAllowed": False, "loginWithEmailAllowed": False, "duplicateEmailsAllowed": True,
        "bruteForceProtected": True, "failureFactor": 5, "waitIncrementSeconds": 60, "maxFailureWaitSeconds": 900,
        "accessTokenLifespan": 300, "ssoSessionIdleTimeout": 1800, "ssoSessionMaxLifespan": 28800,
        "revokeRefreshToken": True, "refreshTokenMaxReuse": 0,
        "internationalizationEnabled": True, "supportedLocales": ["en", "lv"], "defaultLocale": "lv",  # as stored
        "smtpServer": {"host": spec.smtp_host, "port": str(spec.smtp_port), "from": "noreply@klients.lv",
                       "fromDisplayName": "Klients", "auth": "false", "ssl": "false", "starttls": "false"},
    }


def idp_settings(spec: PortalRealm) -> dict[str, Any]:
    """Identity as Keycloak's OpenID Connect identity provider (code flow with PKCE, signature checked)."""
    return {
        "alias": IDP_ALIAS, "displayName": "Klients", "providerId": "oidc", "enabled": True,
        "trustEmail": False, "storeToken": False, "linkOnly": False, "hideOnLogin": False,
        "firstBrokerLoginFlowAlias": FIRST_LOGIN_FLOW,
        "config": {
            "issuer": spec.identity_url, "authorizationUrl": f"{spec.identity_url}/authorize",
            "tokenUrl": f"{spec.identity_url}/token", "jwksUrl": f"{spec.identity_url}/jwks.json",
            "logoutUrl": f"{spec.identity_url}/logout", "useJwksUrl": "true", "validateSignature": "true",
            "clientId": BROKER_CLIENT, "clientAuthMethod": "client_secret_basic",
            "defaultScope": "openid profile email grants", "pkceEnabled": "true", "pkceMethod": "S256",
            "syncMode": "FORCE", "disableUserInfo": "true", "backchannelSupported": "false",
        },
    }


def idp_mappers() -> list[dict[str, Any]]:
    """Identity's ID token into the brokered user and session."""
    def mapper(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
        return {"name": name, "identityProviderAlias": IDP_ALIAS, "identityProviderMapper": kind,
                "config": {"syncMode": "FORCE", **config}}

    return [
        mapper("username is identity's person id", "oidc-username-idp-mapper", {"template": "${CLAIM.sub}"}),
        mapper("grants", "oidc-user-attribute-idp-mapper", {"claim": "klients_grants",
                                                            "user.attribute": GRANTS_ATTRIBUTE}),
        mapper("given name", "oidc-user-attribute-idp-mapper", {"claim": "given_name", "user.attribute": "firstName"}),
        mapper("family name", "oidc-user-attribute-idp-mapper", {"claim": "family_name", "user.attribute": "lastName"}),
        # identity's acr becomes the session note "acr" (the note is named after the claim)
        mapper("acr", "oidc-user-session-note-idp-mapper", {"claims": '[{"key":"acr","value":".*"}]',
                                                          "are.claim.values.regex": "true"}),
    ]


def portal_client(spec: PortalRealm) -> dict[str, Any]:
    """The portal's public client: code flow with PKCE S256; no implicit, no password grant."""
    origins = sorted({u.split("/", 3)[0] + "//" + u.split("/", 3)[2] for u in spec.redirect_uris})
    return {
        "clientId": PORTAL_CLIENT, "name": "Klients portal", "enabled": True, "protocol": "openid-connect",
        "publicClient": True, "standardFlowEnabled": True, "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False, "serviceAccountsEnabled": False, "fullScopeAllowed": False,
        "redirectUris": list(spec.redirect_uris), "webOrigins": origins,
        # OpenID Connect Back-Channel Logout: every end of a portal session (the person signs out, the console
        # signs the user out, the session expires) is posted to identity, which ends the person's logins there.
        "frontchannelLogout": False,
        "attributes": {"pkce.code.challenge.method": "S256",
                       "post.logout.redirect.uris": "##".join(u.rsplit("/", 1)[0] + "/" for u in spec.redirect_uris),
                       "backchannel.logout.url": f"{spec.identity_url}/backchannel-logout/portal",
                       "backchannel.logout.session.required": "true",
                       "backchannel.logout.revoke.offline.tokens": "false"},
    }


def portal_web_client(spec: PortalRealm) -> dict[str, Any]:
    """The client portal's confidential client: code flow with PKCE S256 and the portal's secret; the same
    back-channel logout to identity as the public client."""
    public = portal_client(replace(spec, redirect_uris=spec.web_redirect_uris))
    return {**public, "clientId": PORTAL_WEB_CLIENT, "name": "Klients client portal (server)",
            "publicClient": False, "clientAuthenticatorType": "client-secret",
            "secret": spec.web_secret or _portal_secret(),
            "webOrigins": []}


def claim(name: str, kind: str, config: dict[str, str]) -> dict[str, Any]:
    """A protocol mapper putting ``name`` in the access token (only there)."""
    return {"name": name, "protocol": "openid-connect", "protocolMapper": kind,
            "config": {"claim.name": name, "access.token.claim": "true", "id.token.claim": "false",
                       "userinfo.token.claim": "false", "introspection.token.claim": "true", **config}}


def portal_mappers() -> list[dict[str, Any]]:
    """The access-token claims of identity's layout (docs/tokens.md), from the brokered user and session."""
    return [
        claim("grants", "oidc-usermodel-attribute-mapper", {"user.attribute": GRANTS_ATTRIBUTE,
                                                            "jsonType.label": "JSON"}),
        claim("sub", "oidc-usermodel-property-mapper", {"user.attribute": "username", "jsonType.label": "String"}),
        claim("acr", "oidc-usersessionmodel-note-mapper", {"user.session.note": "acr",
                                                          "jsonType.label": "String"}),
        claim("auth_time", "oidc-usersessionmodel-note-mapper", {"user.session.note": "AUTH_TIME",
                                                                "jsonType.label": "long"}),
        {"name": "audience", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
         "config": {"included.custom.audience": API_AUDIENCE, "access.token.claim": "true",
                    "id.token.claim": "false", "introspection.token.claim": "true"}},
    ]


def sync_client(spec: PortalRealm) -> dict[str, Any]:
    """Identity's service account for writing the grants attribute (client credentials)."""
    return {"clientId": SYNC_CLIENT, "name": "Klients identity grants sync", "enabled": True,
            "protocol": "openid-connect", "publicClient": False, "secret": spec.sync_secret,
            "standardFlowEnabled": False, "implicitFlowEnabled": False, "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": True}


GRANTS_DECLARATION = {
    "name": GRANTS_ATTRIBUTE, "displayName": "Grants (from identity)", "multivalued": False,
    "permissions": {"view": ["admin"], "edit": ["admin"]},
    "annotations": {}, "validations": {"length": {"max": 4096}},
}


# --- reconciling ---------------------------------------------------------------------------------------------

class Reconciler:
    """Brings one realm to the desired state, recording each change it makes."""

    def __init__(self, admin: KeycloakAdmin, spec: PortalRealm) -> None:
        self.admin = admin
        self.spec = spec
        self.changes: list[str] = []

    def run(self) -> list[str]:
        """Reconcile everything; return what was changed (empty when the realm already matched)."""
        self.realm()
        self.user_profile()
        self.required_actions()
        self.first_login_flow()
        self.identity_provider()
        self.clients()
        return self.changes

    def realm(self) -> None:
        admin, spec = self.admin, self.spec
        admin.change_current_realm("master")
        if spec.realm not in {r["realm"] for r in admin.get_realms()}:
            admin.create_realm({"realm": spec.realm, "enabled": True}, skip_exists=True)
            self.changes.append("realm created")
        current = admin.get_realm(spec.realm)
        if not covers(realm_settings(spec), current):
            admin.update_realm(spec.realm, realm_settings(spec))
            self.changes.append("realm settings")
        admin.change_current_realm(spec.realm)

    def user_profile(self) -> None:
        """Declare ``grants`` (admin-only); nothing else is required of a brokered person."""
        profile = self.admin.get_realm_users_profile()
        wanted = dict(profile)
        attributes = []
        for attribute in profile.get("attributes", []):
            if attribute["name"] in ("email", "firstName", "lastName"):
                attribute = {k: v for k, v in attribute.items() if k != "required"}
            if attribute["name"] not in (GRANTS_ATTRIBUTE, *self.spec.extra_attributes):
                attributes.append(attribute)
        attributes.append(GRANTS_DECLARATION)
        attributes += [{**GRANTS_DECLARATION, "name": n, "displayName": n} for n in self.spec.extra_attributes]
        wanted["attributes"] = attributes
        wanted.pop("unmanagedAttributePolicy", None)  # DISABLED: undeclared attributes are refused, not kept
        if wanted != profile:
            self.admin.update_realm_users_profile(wanted)
            self.changes.append("user profile")

    def required_actions(self) -> None:
        """No profile form after a brokered login: identity already verified the person."""
        action = self.admin.get_required_action_by_alias("VERIFY_PROFILE")
        if action and (action.get("enabled") or action.get("defaultAction")):
            self.admin.update_required_action("VERIFY_PROFILE", {**action, "enabled": False, "defaultAction": False})
            self.changes.append("VERIFY_PROFILE off")

    def first_login_flow(self) -> None:
        """A person's first brokered login creates their user: no review page, no linking by e-mail."""
        flows = {f["alias"]: f for f in self.admin.get_authentication_flows()}
        if FIRST_LOGIN_FLOW not in flows:
            self.admin.create_authentication_flow({"alias": FIRST_LOGIN_FLOW, "providerId": "basic-flow",
                                                   "topLevel": True, "builtIn": False,
                                                   "description": "create the brokered user, nothing else"})
            self.changes.append("first broker login flow")
        executions = self.admin.get_authentication_flow_executions(FIRST_LOGIN_FLOW)
        if not any(e.get("providerId") == "idp-create-user-if-unique" for e in executions):
            self.admin.create_authentication_flow_execution({"provider": "idp-create-user-if-unique"},
                                                            FIRST_LOGIN_FLOW)
            self.changes.append("first broker login: create user")
            executions = self.admin.get_authentication_flow_executions(FIRST_LOGIN_FLOW)
        for execution in executions:
            if execution.get("providerId") == "idp-create-user-if-unique" and execution["requirement"] != "REQUIRED":
                self.admin.update_authentication_flow_executions({"id": execution["id"], "requirement": "REQUIRED"},
                                                                 FIRST_LOGIN_FLOW)
                self.changes.append("first broker login: create user required")

    def identity_provider(self) -> None:
        desired = idp_settings(self.spec)
        current = {i["alias"]: i for i in self.admin.get_idps()}.get(IDP_ALIAS)
        full = {**desired, "config": {**desired["config"], "clientSecret": self.spec.broker_secret}}
        if current is None:
            self.admin.create_idp(full)
            self.changes.append("identity provider created")
        elif not covers(desired, current):
            self.admin.update_idp(IDP_ALIAS, {**current, **full, "config": {**current["config"], **full["config"]}})
            self.changes.append("identity provider settings")
        existing = {m["name"]: m for m in self.admin.get_idp_mappers(IDP_ALIAS)}
        for mapper in idp_mappers():
            have = existing.get(mapper["name"])
            if have is None:
                self.admin.add_mapper_to_idp(IDP_ALIAS, mapper)
                self.changes.append(f"idp mapper {mapper['name']}")
            elif not covers(mapper, have):
                self.admin.update_mapper_in_idp(IDP_ALIAS, have["id"], {**mapper, "id": have["id"]})
                self.changes.append(f"idp mapper {mapper['name']} settings")

    def clients(self) -> None:
        for desired in (portal_client(self.spec), portal_web_client(self.spec)):
            portal = self._client(desired)
            self._mappers(portal, portal_mappers())
            # Only our claims: Keycloak's own sub/acr/profile/email claims would clash with identity's layout.
            for scope in self.admin.get_client_default_client_scopes(portal):
                if scope["name"] in ("basic", "acr", "profile", "email", "roles", "web-origins"):
                    self.admin.delete_client_default_client_scope(portal, scope["id"])
                    self.changes.append(f"{desired['clientId']}: default scope {scope['name']} removed")
            for scope in self.admin.get_client_optional_client_scopes(portal):
                self.admin.delete_client_optional_client_scope(portal, scope["id"])
                self.changes.append(f"{desired['clientId']}: optional scope {scope['name']} removed")
        sync = self._client(sync_client(self.spec))
        service_user = self.admin.get_client_service_account_user(sync)
        management = self.admin.get_client_id("realm-management")
        have = {r["name"] for r in self.admin.get_client_roles_of_user(service_user["id"], management)}
        wanted = [self.admin.get_client_role(management, r) for r in ("manage-users", "view-users") if r not in have]
        if wanted:
            self.admin.assign_client_role(service_user["id"], management, wanted)
            self.changes.append("sync service account roles")

    def _client(self, desired: dict[str, Any]) -> str:
        uuid = self.admin.get_client_id(desired["clientId"])
        if uuid is None:
            uuid = self.admin.create_client(desired, skip_exists=True)
            self.changes.append(f"client {desired['clientId']} created")
            return str(uuid)
        current = self.admin.get_client(uuid)
        if not covers(desired, current):
            self.admin.update_client(uuid, desired)
            self.changes.append(f"client {desired['clientId']} settings")
        return str(uuid)

    def _mappers(self, client_uuid: str, mappers: list[dict[str, Any]]) -> None:
        existing = {m["name"]: m for m in self.admin.get_mappers_from_client(client_uuid)}
        for mapper in mappers:
            have = existing.pop(mapper["name"], None)
            if have is None:
                self.admin.add_mapper_to_client(client_uuid, mapper)
                self.changes.append(f"mapper {mapper['name']}")
            elif not covers(mapper, have):
                self.admin.update_client_mapper(client_uuid, have["id"], {**mapper, "id": have["id"]})
                self.changes.append(f"mapper {mapper['name']} settings")
        for stray in existing.values():  # a mapper added by hand could leak claims: remove it
            self.admin.remove_client_mapper(client_uuid, stray["id"])
            self.changes.append(f"mapper {stray['name']} removed")


def provision(admin: KeycloakAdmin, spec: PortalRealm) -> list[str]:
    """Bring the portal realm to the state ``spec`` describes; return the changes made."""
    return Reconciler(admin, spec).run()


if __name__ == "__main__":
    portal = PortalRealm.from_env()
    made = provision(admin_client(), portal)
    url = os.environ.get("KEYCLOAK_URL", "http://127.0.0.1:8080")
    print(f"portal realm {portal.realm}: {', '.join(made) if made else 'already as described'}; "
          f"issuer {portal.issuer(url)}; register {portal.broker_redirect_uri(url)} at identity")
