"""Registering OAuth clients (``klients-identity add-client``) and keeping the configured ones as configured
(``klients-identity migrate``: the portal's public and confidential clients, Keycloak's broker client), with
the redirect-URI rules every registration follows."""

from __future__ import annotations

import argparse
import secrets
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from klients_common.settings import var_dir

from ..hashing import hasher
from ..models import SIGNING_METADATA, OAuthClient, check_client_metadata
from ..settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})


def redirect_uri_problem(uri: str, *, loopback: bool = True) -> str | None:
    """Return why ``uri`` cannot be a client's redirect URI, or None. Only absolute ``https`` URIs, or for
    native and development clients ``http`` on the loopback host (``loopback``); never a fragment, user
    information, spaces or characters a URI may not hold."""
    if not uri or len(uri) > 2000 or any(c.isspace() or c in '"<>\\^`{|}' or not c.isprintable() for c in uri) \
            or not uri.isascii():
        return "not a valid absolute URI"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "not a valid absolute URI"
    if "#" in uri:
        return "a redirect URI may not have a fragment"
    if "@" in parts.netloc:
        return "a redirect URI may not carry user information"
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if parts.scheme == "https" and parts.hostname:
        if not loopback and host.lower() in LOOPBACK_HOSTS:
            return "a production redirect URI must name the portal's real host, not the loopback address"
        return None
    if parts.scheme == "http" and host.lower() in LOOPBACK_HOSTS:
        return None if loopback else "a production redirect URI must be https on the portal's real host"
    return "https only (http only on 127.0.0.1, [::1] or localhost, for native and development clients)"


def check_redirect_uris(uris: list[str] | tuple[str, ...], *, loopback: bool = True) -> None:
    """Raise ``ValueError`` naming the first unusable redirect URI."""
    for uri in uris:
        problem = redirect_uri_problem(uri, loopback=loopback)
        if problem:
            raise ValueError(f"redirect URI {uri!r}: {problem}")


def ensure_portal_client(session: Session, settings: Settings) -> None:
    """Create the public portal client (PKCE, no secret), or keep its redirect URIs as configured. With an
    https issuer (production) ``PORTAL_REDIRECT_URIS`` must be https URIs on a real host: the development
    default (127.0.0.1) is refused."""
    check_redirect_uris(settings.portal_redirect_uris, loopback=not settings.issuer.startswith("https://"))
    row = session.get(OAuthClient, "klients-portal")
    if row is None:
        row = OAuthClient(client_id="klients-portal", name="Klients portal", secret_hash=None,
                          scopes="openid profile email offline_access",
                          grant_types="authorization_code refresh_token")
        session.add(row)
    row.redirect_uris = list(settings.portal_redirect_uris)
    row.post_logout_redirect_uris = [u.rsplit("/", 1)[0] + "/" for u in settings.portal_redirect_uris]


def ensure_portal_web_client(session: Session, settings: Settings) -> None:
    """The portal's confidential client ``klients-portal-web``, kept as configured: redirect URI
    ``<PORTAL_URL>/callback``, post-logout URI ``<PORTAL_URL>/``, secret ``PORTAL_CLIENT_SECRET`` or else the one
    in ``var/portal-client-secret`` (made at the first run, readable by its owner only; the portal reads it)."""
    secret = settings.portal_client_secret
    if not secret:
        path = var_dir() / "portal-client-secret"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(32))
        secret = path.read_text().strip()
    row = session.get(OAuthClient, "klients-portal-web") or OAuthClient(client_id="klients-portal-web")
    row.name, row.redirect_uris = "Klients portal (web)", [f"{settings.portal_url}/callback"]
    row.post_logout_redirect_uris = [f"{settings.portal_url}/"]
    row.scopes, row.grant_types = "openid profile email offline_access", "authorization_code refresh_token"
    try:
        current = row.secret_hash is not None and hasher.verify(row.secret_hash, secret)
    except Exception:  # noqa: BLE001 - argon2 raises on a mismatch: the secret was changed
        current = False
    if not current:
        row.secret_hash = hasher.hash(secret)
    session.add(row)


def ensure_broker_client(session: Session, settings: Settings) -> None:
    """Keycloak-fronted mode: Keycloak's confidential client at identity, kept as configured."""
    row = session.get(OAuthClient, "keycloak-broker") or OAuthClient(client_id="keycloak-broker")
    row.name, row.redirect_uris = "Keycloak portal realm", [settings.broker_redirect_uri]
    row.post_logout_redirect_uris = [f"{settings.keycloak_url}/realms/{settings.portal_realm}/"]
    row.scopes, row.grant_types = "openid profile email grants", "authorization_code"
    try:
        current = row.secret_hash is not None and hasher.verify(row.secret_hash, settings.keycloak_broker_secret)
    except Exception:  # noqa: BLE001 - argon2 raises on a mismatch: the secret was changed
        current = False
    if not current:
        row.secret_hash = hasher.hash(settings.keycloak_broker_secret)
    session.add(row)


def client_metadata(args: argparse.Namespace) -> dict[str, str]:
    """Return the client metadata ``add-client`` registers (its signing algorithms, when given); raise
    ``ValueError`` saying which algorithm is not offered."""
    metadata = {name: value for name in SIGNING_METADATA if (value := getattr(args, name, None))}
    check_client_metadata(metadata)
    return metadata


def add_client(session: Session, args: argparse.Namespace) -> str | None:
    """Register a client; return its secret (shown once) for a confidential one."""
    check_redirect_uris(args.redirect_uri)
    check_redirect_uris(args.post_logout_redirect_uri or [])
    metadata = client_metadata(args)
    secret = secrets.token_urlsafe(32) if args.confidential else None
    session.add(OAuthClient(client_id=args.client_id, name=args.name or args.client_id,
                            secret_hash=hasher.hash(secret) if secret else None, redirect_uris=args.redirect_uri,
                            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                            scopes=args.scopes, grant_types="authorization_code refresh_token",
                            client_metadata=metadata))
    return secret
