"""The portal's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``PORTAL_URL`` | ``http://127.0.0.1:3000`` | where people reach the portal; ``<PORTAL_URL>/callback`` is its redirect URI at the issuer, ``<PORTAL_URL>/`` its post-logout URI |
| ``PORTAL_BIND`` | ``127.0.0.1:3000`` | where ``klients-portal serve`` listens |
| ``PORTAL_WORKERS`` / ``PORTAL_THREADS`` | ``2`` / ``8`` | gunicorn workers and threads per worker |
| ``PORTAL_TOKEN_ISSUER`` | ``identity`` | who issues the portal's tokens: ``identity`` (at ``IDENTITY_ISSUER``) or ``keycloak`` (the realm ``PORTAL_REALM`` at ``KEYCLOAK_URL``) |
| ``PORTAL_ISSUER`` | from ``PORTAL_TOKEN_ISSUER`` | the issuer URL itself (its discovery document names every endpoint) |
| ``PORTAL_CLIENT_ID`` | ``klients-portal-web`` | the portal's confidential client at the issuer (identity's, or the portal realm's of the same name) |
| ``PORTAL_SCOPE`` | ``openid profile email offline_access``; with Keycloak ``openid`` | the scopes asked for (the portal realm's client offers only identity's claim layout) |
| ``PORTAL_IDP_HINT`` | with Keycloak ``klients-identity`` | sent as ``kc_idp_hint``: Keycloak goes straight on to identity's login methods |
| ``PORTAL_CLIENT_SECRET`` | the file ``PORTAL_CLIENT_SECRET_FILE`` | its secret (``client_secret_basic``) |
| ``PORTAL_CLIENT_SECRET_FILE`` | ``var/portal-client-secret`` | where ``klients-identity migrate`` wrote the secret when none was configured |
| ``PORTAL_API_URL`` | ``http://127.0.0.1:8000`` | the gateway; the portal calls only its public ``/api/v1`` |
| ``PORTAL_API_TIMEOUT`` | ``10`` | seconds to wait for the gateway or the issuer |
| ``PORTAL_DATABASE_URL`` | SQLite ``var/portal.db`` | the session table (PostgreSQL when several replicas serve) |
| ``PORTAL_SESSION_KEY`` | the file ``PORTAL_SESSION_KEY_FILE`` | the keys the session table's tokens are encrypted with (AES-256-GCM; 32 bytes of URL-safe base64 each, ``klients-portal new-session-key``), space or comma separated: the first encrypts, all decrypt (rotation). Every replica needs the same |
| ``PORTAL_SESSION_KEY_FILE`` | ``var/portal-session-key`` | where a single-machine portal keeps a key it made itself when none is configured |
| ``PORTAL_SESSION_IDLE_MINUTES`` | ``30`` | a session unused this long has expired |
| ``PORTAL_SESSION_HOURS`` | ``8`` | a session ends this long after it began, whatever happens (the login's own limit) |
| ``SESSION_COOKIE_SECURE`` | ``true`` | the cookie's ``Secure`` flag; ``false`` only for local http development |
| ``PORTAL_RATE_LIMIT_LOGIN`` | ``20/minute`` | login starts per client address (``/login``) |
| ``PORTAL_PAYMENT_ORIGINS`` | the origin of ``PAYMENT_PROVIDER_URL`` (``http://127.0.0.1:8090``) | where the payment form's redirect may go (the provider's pages, space-separated origins): browsers check it against the CSP's ``form-action`` |
| ``TRUSTED_PROXIES`` | ``0`` | reverse proxies in front whose ``X-Forwarded-For`` is believed |
| ``MAX_REQUEST_BYTES`` | ``65536`` | the largest request body accepted (413 before reading more) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from klients_common.settings import IDENTITY_URL_DEFAULT, database_url, env_bool, env_float, env_int, env_str, var_dir


@dataclass(frozen=True)
class Settings:
    """The portal's settings, read once at start-up."""

    portal_url: str
    issuer: str
    client_id: str
    client_secret: str
    api_url: str
    api_timeout: float
    database_url: str
    session_idle_minutes: int
    session_hours: int
    cookie_secure: bool
    rate_limit_login: str
    trusted_proxies: int
    max_request_bytes: int
    payment_origins: tuple[str, ...] = ()
    session_keys: tuple[str, ...] = ()
    scope: str = "openid profile email offline_access"
    idp_hint: str = ""

    @property
    def redirect_uri(self) -> str:
        """The portal's redirect URI at the issuer."""
        return f"{self.portal_url}/callback"

    @property
    def post_logout_uri(self) -> str:
        """Where the issuer sends the browser after logout."""
        return f"{self.portal_url}/"

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment."""
        return cls(
            portal_url=portal_url(),
            issuer=issuer(),
            client_id=env_str("PORTAL_CLIENT_ID", "klients-portal-web"),
            client_secret=client_secret(),
            api_url=env_str("PORTAL_API_URL", "http://127.0.0.1:8000").rstrip("/"),
            api_timeout=env_float("PORTAL_API_TIMEOUT", 10.0),
            database_url=database_url("portal"),
            session_idle_minutes=env_int("PORTAL_SESSION_IDLE_MINUTES", 30),
            session_hours=env_int("PORTAL_SESSION_HOURS", 8),
            cookie_secure=env_bool("SESSION_COOKIE_SECURE", True),
            rate_limit_login=env_str("PORTAL_RATE_LIMIT_LOGIN", "20/minute"),
            trusted_proxies=env_int("TRUSTED_PROXIES", 0),
            max_request_bytes=env_int("MAX_REQUEST_BYTES", 64 * 1024),
            payment_origins=tuple(env_str("PORTAL_PAYMENT_ORIGINS", _origin(
                env_str("PAYMENT_PROVIDER_URL", "http://127.0.0.1:8090"))).split()),
            session_keys=session_keys(),
            scope=env_str("PORTAL_SCOPE", "openid" if keycloak() else "openid profile email offline_access"),
            idp_hint=env_str("PORTAL_IDP_HINT", "klients-identity" if keycloak() else ""),
        )


def portal_url() -> str:
    """Return ``PORTAL_URL`` without a trailing slash."""
    return env_str("PORTAL_URL", "http://127.0.0.1:3000").rstrip("/")


def keycloak() -> bool:
    """Whether Keycloak's portal realm issues the portal's tokens (``PORTAL_TOKEN_ISSUER=keycloak``)."""
    return env_str("PORTAL_TOKEN_ISSUER", "identity") == "keycloak"


def issuer() -> str:
    """Return the issuer of the portal's tokens (``PORTAL_ISSUER``, else from ``PORTAL_TOKEN_ISSUER``)."""
    explicit = env_str("PORTAL_ISSUER", "")
    if explicit:
        return explicit.rstrip("/")
    if keycloak():
        keycloak_url = env_str("KEYCLOAK_URL", "http://127.0.0.1:8080").rstrip("/")
        return f"{keycloak_url}/realms/{env_str('PORTAL_REALM', 'klients-portal')}"
    return env_str("IDENTITY_ISSUER", IDENTITY_URL_DEFAULT).rstrip("/")


def secret_file() -> Path:
    """Return where the portal client's secret is kept when it is not configured."""
    return Path(env_str("PORTAL_CLIENT_SECRET_FILE", str(var_dir() / "portal-client-secret")))


def client_secret() -> str:
    """Return ``PORTAL_CLIENT_SECRET``, else the secret file's content ("" when there is none yet)."""
    value = env_str("PORTAL_CLIENT_SECRET", "")
    if value:
        return value
    path = secret_file()
    return path.read_text().strip() if path.exists() else ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def session_keys() -> tuple[str, ...]:
    """Return the keys of ``PORTAL_SESSION_KEY`` (the first encrypts); without it, the key in
    ``PORTAL_SESSION_KEY_FILE``, made (mode 0600) on first use: right for one machine (``make run``), while
    replicas must share a configured key."""
    configured = tuple(k for k in env_str("PORTAL_SESSION_KEY", "").replace(",", " ").split() if k)
    if configured:
        return configured
    path = Path(env_str("PORTAL_SESSION_KEY_FILE", str(var_dir() / "portal-session-key")))
    if not path.exists():
        from .crypto import new_key

        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(new_key() + "\n")
    return tuple(path.read_text().split())
