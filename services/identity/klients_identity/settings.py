"""Identity's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``IDENTITY_ISSUER`` | ``http://127.0.0.1:8001`` | the ``iss`` of every token; identity's public base URL |
| ``IDENTITY_DATABASE_URL`` | ``sqlite:///var/identity.db`` | persons, grants, sessions, signing keys |
| ``API_AUDIENCE`` | ``klients-api`` | ``aud`` of access tokens for the gateway and services |
| ``ACCESS_TOKEN_TTL`` | ``300`` | access-token lifetime in seconds (at most 300, docs/tokens.md) |
| ``KEY_PUBLISH_AHEAD`` | ``600`` | seconds a new signing key is published before it signs (≥ the JWKS cache TTL) |
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus (billing is asked about the register over RPC) |
| ``SESSION_COOKIE_SECURE`` | ``true`` | send the session cookie over HTTPS only (``false`` for local http) |
| ``LOGIN_METHODS`` | ``smart_id,eparaksts,bank,email`` | the methods offered (those configured below) |
| ``SMARTID_URL`` | ``http://127.0.0.1:8091/v3`` | Smart-ID RP API (the simulator in development) |
| ``SMARTID_V2_URL`` | unset | RP API v2, tried for the notification flow when v3 is down or in maintenance (e.g. ``https://rp-api.smart-id.com/v2``) |
| ``SMARTID_RP_UUID`` / ``SMARTID_RP_NAME`` | DEMO values | our relying-party account |
| ``SMARTID_TRUST_ANCHORS`` | ``var/smartid-ca.pem`` | PEM file(s), ``:``-separated, of the CAs issuing Smart-ID certificates |
| ``SMARTID_CERT_LEVEL`` | ``QUALIFIED`` | the lowest certificate level accepted |
| ``SMARTID_SCHEME`` | ``smart-id-demo`` | ``smart-id`` in LIVE |
| ``EPARAKSTS_URL`` / ``EPARAKSTS_CLIENT_ID`` / ``EPARAKSTS_CLIENT_SECRET`` | simulator at ``http://127.0.0.1:8092`` / ``klients`` / dev secret | eParaksts (LVRTC) account |
| ``BANKS`` | ``[]`` | JSON list of banks: ``bank_id``, ``display_name``, ``protocol`` (``v009``/``elink``), ``url``, ``merchant_id``, ``bank_sender_id``, ``our_private_key_file``, ``bank_certificate_file`` |
| ``RATE_LIMIT_LOGIN`` / ``RATE_LIMIT_TOKEN`` | ``10/minute`` / ``120/minute`` | per client address: starting a login; the token endpoint |
| ``RATE_LIMIT_STORAGE`` | ``database`` | where counts live: ``database`` (identity's own database: every worker and instance counts together), another SQLAlchemy URL, ``redis://…``, or ``memory://`` (one process only) |
| ``RATE_LIMIT_ACCOUNT_LOGIN`` | ``10/hour`` | failed password logins per target e-mail address, from any client address |
| ``RATE_LIMIT_ACCOUNT_MAIL`` | ``3/hour`` | registration and reset mails per target e-mail address (more requests get the same answer, no mail) |
| ``RATE_LIMIT_ACCOUNT_PUSH`` | ``6/hour`` | Smart-ID notifications started per personal code |
| ``EMAIL_FORM_SECONDS`` | ``0.25`` | the public e-mail forms (registration, reset) answer no sooner than this, whatever the address |
| ``TRUSTED_PROXIES`` | ``0`` | reverse proxies in front whose ``X-Forwarded-For`` is believed |
| ``MAX_REQUEST_BYTES`` | ``65536`` | the largest request body accepted (a 413 page before reading more); the operators' upload form allows its attachment (10 MB) |
| ``INVITATION_TTL_HOURS`` | ``72`` | how long an invitation link (additional user, delegate) stays valid |
| ``KEYCLOAK_URL`` / ``STAFF_REALM`` | ``http://127.0.0.1:8080`` / ``klients-staff`` | the Keycloak staff realm operators sign in with |
| ``OPERATOR_CLIENT_SECRET`` | dev secret | identity's client ``klients-operator-pages`` in that realm (``deploy/keycloak/staff_realm.py``) |
| ``STAFF_RECHECK_SECONDS`` | ``60`` | before an operator's action (a form post), the staff session is re-checked at Keycloak (a refresh) when the last check is older than this (0-60) |
| ``PORTAL_TOKEN_ISSUER`` | ``identity`` | ``identity`` (embedded: identity issues the portal's tokens) or ``keycloak`` (Keycloak-fronted: a portal realm brokers to identity and issues them; identity keeps the realm's ``grants`` attributes in step) |
| ``PORTAL_REALM`` | ``klients-portal`` | the Keycloak portal realm (Keycloak-fronted mode) |
| ``KEYCLOAK_BROKER_SECRET`` | dev secret | Keycloak's client secret at identity (``keycloak-broker``), as in ``deploy/keycloak/portal_realm.py`` |
| ``KEYCLOAK_SYNC_SECRET`` | dev secret | identity's service account ``klients-identity-sync`` in the portal realm |
| ``PORTAL_REDIRECT_URIS`` | ``http://127.0.0.1:3000/callback`` | redirect URIs of the public portal client ``migrate`` creates and keeps as configured; with an https issuer they must be https URIs on a real host (the default is refused) |
| ``PORTAL_URL`` | ``http://127.0.0.1:3000`` | the portal (``portal/``): its confidential client ``klients-portal-web`` (redirect ``<PORTAL_URL>/callback``, post-logout ``<PORTAL_URL>/``) is created by ``migrate`` |
| ``PORTAL_CLIENT_SECRET`` | the file ``var/portal-client-secret`` (written at the first ``migrate``) | that client's secret |
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from klients_common.settings import (
    AMQP_URI_DEFAULT,
    API_AUDIENCE_DEFAULT,
    IDENTITY_URL_DEFAULT,
    database_url,
    env_bool,
    env_float,
    env_int,
    env_str,
    var_dir,
)


@dataclass(frozen=True)
class Settings:
    """Identity's settings, read once at start-up."""

    issuer: str
    database_url: str
    api_audience: str
    access_token_ttl: int
    key_publish_ahead: int
    amqp_uri: str
    session_cookie_secure: bool
    login_methods: tuple[str, ...]
    smartid_url: str
    smartid_v2_url: str
    smartid_rp_uuid: str
    smartid_rp_name: str
    smartid_trust_anchors: tuple[Path, ...]
    smartid_cert_level: str
    smartid_scheme: str
    portal_redirect_uris: tuple[str, ...]
    eparaksts_url: str
    eparaksts_client_id: str
    eparaksts_client_secret: str
    banks_json: str
    rate_limit_login: str
    rate_limit_token: str
    rate_limit_authorize: str
    rate_limit_storage: str
    rate_limit_account_login: str
    rate_limit_account_mail: str
    rate_limit_account_push: str
    email_form_seconds: float
    trusted_proxies: int
    invitation_ttl_hours: float
    staff_issuer: str
    staff_client_secret: str
    staff_recheck_seconds: int
    portal_token_issuer: str
    keycloak_url: str
    portal_realm: str
    keycloak_broker_secret: str
    keycloak_sync_secret: str
    max_request_bytes: int = 64 * 1024
    portal_url: str = "http://127.0.0.1:3000"
    portal_client_secret: str = ""

    @property
    def keycloak_fronted(self) -> bool:
        """Whether Keycloak issues the portal's tokens (identity is its identity provider)."""
        return self.portal_token_issuer == "keycloak"  # noqa: S105 - a mode, not a secret

    @property
    def broker_redirect_uri(self) -> str:
        """Where identity sends the browser back to Keycloak's portal realm."""
        return f"{self.keycloak_url}/realms/{self.portal_realm}/broker/klients-identity/endpoint"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment."""
        ttl = env_int("ACCESS_TOKEN_TTL", 300)
        if not 0 < ttl <= 300:
            raise ValueError("ACCESS_TOKEN_TTL must be between 1 and 300 seconds")
        recheck = env_int("STAFF_RECHECK_SECONDS", 60)
        if not 0 <= recheck <= 60:
            raise ValueError("STAFF_RECHECK_SECONDS must be between 0 and 60")
        anchors = env_str("SMARTID_TRUST_ANCHORS", str(var_dir() / "smartid-ca.pem"))
        return cls(
            issuer=env_str("IDENTITY_ISSUER", IDENTITY_URL_DEFAULT).rstrip("/"),
            database_url=database_url("identity"),
            api_audience=env_str("API_AUDIENCE", API_AUDIENCE_DEFAULT),
            access_token_ttl=ttl,
            key_publish_ahead=env_int("KEY_PUBLISH_AHEAD", 600),
            amqp_uri=env_str("AMQP_URI", AMQP_URI_DEFAULT),
            session_cookie_secure=env_bool("SESSION_COOKIE_SECURE", True),
            login_methods=tuple(m for m in env_str("LOGIN_METHODS", "smart_id,eparaksts,bank,email").split(",") if m),
            smartid_url=env_str("SMARTID_URL", "http://127.0.0.1:8091/v3"),
            smartid_v2_url=env_str("SMARTID_V2_URL", ""),
            smartid_rp_uuid=env_str("SMARTID_RP_UUID", "00000000-0000-4000-8000-000000000000"),
            smartid_rp_name=env_str("SMARTID_RP_NAME", "DEMO"),
            smartid_trust_anchors=tuple(Path(p) for p in anchors.split(":") if p),
            smartid_cert_level=env_str("SMARTID_CERT_LEVEL", "QUALIFIED"),
            smartid_scheme=env_str("SMARTID_SCHEME", "smart-id-demo"),
            portal_redirect_uris=tuple(env_str("PORTAL_REDIRECT_URIS", "http://127.0.0.1:3000/callback").split()),
            eparaksts_url=env_str("EPARAKSTS_URL", "http://127.0.0.1:8092"),
            eparaksts_client_id=env_str("EPARAKSTS_CLIENT_ID", "klients"),
            eparaksts_client_secret=env_str("EPARAKSTS_CLIENT_SECRET", "dev-eparaksts-secret"),
            banks_json=env_str("BANKS", "[]"),
            rate_limit_login=env_str("RATE_LIMIT_LOGIN", "10/minute"),
            rate_limit_token=env_str("RATE_LIMIT_TOKEN", "120/minute"),
            rate_limit_authorize=env_str("RATE_LIMIT_AUTHORIZE", "120/minute"),
            rate_limit_storage=env_str("RATE_LIMIT_STORAGE", "database"),
            rate_limit_account_login=env_str("RATE_LIMIT_ACCOUNT_LOGIN", "10/hour"),
            rate_limit_account_mail=env_str("RATE_LIMIT_ACCOUNT_MAIL", "3/hour"),
            rate_limit_account_push=env_str("RATE_LIMIT_ACCOUNT_PUSH", "6/hour"),
            email_form_seconds=env_float("EMAIL_FORM_SECONDS", 0.25),
            trusted_proxies=env_int("TRUSTED_PROXIES", 0),
            invitation_ttl_hours=env_float("INVITATION_TTL_HOURS", 72.0),
            staff_issuer=(env_str("KEYCLOAK_URL", "http://127.0.0.1:8080").rstrip("/") + "/realms/"
                          + env_str("STAFF_REALM", "klients-staff")),
            staff_client_secret=env_str("OPERATOR_CLIENT_SECRET", "operator-pages-dev-secret"),
            staff_recheck_seconds=recheck,
            portal_token_issuer=env_str("PORTAL_TOKEN_ISSUER", "identity"),
            keycloak_url=env_str("KEYCLOAK_URL", "http://127.0.0.1:8080").rstrip("/"),
            portal_realm=env_str("PORTAL_REALM", "klients-portal"),
            keycloak_broker_secret=env_str("KEYCLOAK_BROKER_SECRET", "keycloak-broker-dev-secret"),
            keycloak_sync_secret=env_str("KEYCLOAK_SYNC_SECRET", "identity-sync-dev-secret"),
            max_request_bytes=env_int("MAX_REQUEST_BYTES", 64 * 1024),
            portal_url=env_str("PORTAL_URL", "http://127.0.0.1:3000").rstrip("/"),
            portal_client_secret=env_str("PORTAL_CLIENT_SECRET", ""),
        )
