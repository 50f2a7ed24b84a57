"""``klients-identity``: migrate (and make sure a signing key and the portal client exist), rotate
signing keys, add an OAuth client, serve the web app, run the nameko service.

    klients-identity add-client my-service --confidential --redirect-uri https://svc.example/cb
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine, migrate, transaction
from klients_common.service_cli import BUS_COMMANDS, bus_command, migrate_bus
from klients_common.settings import nameko_config

from .oauth import keys
from .settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})


def redirect_uri_problem(uri: str, *, loopback: bool = True) -> str | None:
    """Return why ``uri`` cannot be a client's redirect URI, or None. Only absolute ``https`` URIs, or for
    native and development clients ``http`` on the loopback host (``loopback``); never a fragment, user
    information, spaces or characters a URI may not hold."""
    from urllib.parse import urlsplit

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


def ensure_portal_client(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Create the public portal client (PKCE, no secret), or keep its redirect URIs as configured. With an
    https issuer (production) ``PORTAL_REDIRECT_URIS`` must be https URIs on a real host: the development
    default (127.0.0.1) is refused."""
    from .models import OAuthClient

    check_redirect_uris(settings.portal_redirect_uris, loopback=not settings.issuer.startswith("https://"))
    row = session.get(OAuthClient, "klients-portal")
    if row is None:
        row = OAuthClient(client_id="klients-portal", name="Klients portal", secret_hash=None,
                          scopes="openid profile email offline_access",
                          grant_types="authorization_code refresh_token")
        session.add(row)
    row.redirect_uris = list(settings.portal_redirect_uris)
    row.post_logout_redirect_uris = [u.rsplit("/", 1)[0] + "/" for u in settings.portal_redirect_uris]


def ensure_portal_web_client(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The portal's confidential client ``klients-portal-web``, kept as configured: redirect URI
    ``<PORTAL_URL>/callback``, post-logout URI ``<PORTAL_URL>/``, secret ``PORTAL_CLIENT_SECRET`` or else the one
    in ``var/portal-client-secret`` (made at the first run, readable by its owner only; the portal reads it)."""
    from klients_common.settings import var_dir

    from .models import OAuthClient
    from .oauth.provider import hasher

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


def ensure_broker_client(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Keycloak-fronted mode: Keycloak's confidential client at identity, kept as configured."""
    from .models import OAuthClient
    from .oauth.provider import hasher

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


def add_client(session, args: argparse.Namespace) -> str | None:  # type: ignore[no-untyped-def]
    """Register a client; return its secret (shown once) for a confidential one."""
    from .models import OAuthClient
    from .oauth.provider import hasher

    check_redirect_uris(args.redirect_uri)
    check_redirect_uris(args.post_logout_redirect_uri or [])
    secret = secrets.token_urlsafe(32) if args.confidential else None
    session.add(OAuthClient(client_id=args.client_id, name=args.name or args.client_id,
                            secret_hash=hasher.hash(secret) if secret else None, redirect_uris=args.redirect_uri,
                            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                            scopes=args.scopes, grant_types="authorization_code refresh_token"))
    return secret


def purge_command(engine, *, every: float, batch: int) -> int:  # type: ignore[no-untyped-def]
    """Run the retention job once, or for ever every ``every`` seconds (a failed run is retried next time)."""
    import logging
    import time

    from .retention import purge

    log = logging.getLogger("klients_identity.retention")
    while True:
        try:
            counts = purge(engine, batch=batch)
            print("purged " + ", ".join(f"{table} {n}" for table, n in counts.items()), flush=True)
        except Exception:
            if not every:
                raise
            log.exception("purge failed; trying again in %s s", every)
        if not every:
            return 0
        time.sleep(every)


def main(argv: list[str] | None = None) -> int:
    """Run one identity command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in BUS_COMMANDS:
        return bus_command("klients-identity", "identity", argv, nameko_config("identity"))
    parser = argparse.ArgumentParser(prog="klients-identity")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="upgrade the database; make sure a signing key and the portal client exist")
    rotate = sub.add_parser("rotate-keys", help="create the next signing key")
    rotate.add_argument("--now", action="store_true", help="sign with it at once (first key, emergencies)")
    client = sub.add_parser("add-client", help="register an OAuth client (PKCE S256 is required of all)")
    client.add_argument("client_id")
    client.add_argument("--name")
    client.add_argument("--confidential", action="store_true", help="give it a secret (printed once)")
    client.add_argument("--redirect-uri", action="append", required=True)
    client.add_argument("--post-logout-redirect-uri", action="append")
    client.add_argument("--scopes", default="openid profile email offline_access")
    serve = sub.add_parser("serve", help="serve identity's web app with gunicorn")
    serve.add_argument("--bind", default=os.environ.get("IDENTITY_BIND", "127.0.0.1:8001"))
    serve.add_argument("--workers", default=os.environ.get("IDENTITY_WORKERS", "2"))
    sub.add_parser("run", help="run identity's nameko service (events)")
    purge = sub.add_parser("purge", help="delete expired sessions, codes, tokens, nonces, links, counters")
    purge.add_argument("--every", type=float, default=0, help="repeat every so many seconds (0: once)")
    purge.add_argument("--batch", type=int, default=1000, help="rows per delete statement")
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command == "serve":
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--workers",
                                   str(args.workers), "--threads", os.environ.get("IDENTITY_THREADS", "8"),
                                   "klients_identity.app:serve_app()"])  # its own access lines: no query strings
    if args.command == "run":
        from klients_common.green import patch

        patch()
        from klients_common.green import run_services

        from .events.service import IdentityService

        services: list[type] = [IdentityService]
        if settings.keycloak_fronted:
            from .events.keycloak_sync import KeycloakSyncService

            services.append(KeycloakSyncService)
        run_services(nameko_config("identity", IDENTITY_ISSUER=settings.issuer,
                                    INVITATION_TTL_HOURS=settings.invitation_ttl_hours,
                                    KEYCLOAK_URL=settings.keycloak_url, PORTAL_REALM=settings.portal_realm,
                                    KEYCLOAK_SYNC_SECRET=settings.keycloak_sync_secret), *services)
        return 0
    factory = sessionmaker(make_engine(settings.database_url))
    if args.command == "migrate":
        migrate("klients_identity", settings.database_url)
        migrate_bus("identity", nameko_config("identity"),
                    optional=("identity_keycloak_sync",) if settings.keycloak_fronted else ())
        with transaction(factory) as session:
            keys.ensure_key(session, token_ttl=settings.access_token_ttl)
            ensure_portal_client(session, settings)
            ensure_portal_web_client(session, settings)
            if settings.keycloak_fronted:
                ensure_broker_client(session, settings)
    elif args.command == "rotate-keys":
        with transaction(factory) as session:
            key = keys.rotate(session, publish_ahead=0 if args.now else settings.key_publish_ahead,
                              token_ttl=settings.access_token_ttl)
            print(f"new key {key.kid} signs from {key.active_from.isoformat()}")
    elif args.command == "purge":
        return purge_command(make_engine(settings.database_url), every=args.every, batch=args.batch)
    elif args.command == "add-client":
        try:
            check_redirect_uris(args.redirect_uri + (args.post_logout_redirect_uri or []))
        except ValueError as exc:
            parser.error(str(exc))
        with transaction(factory) as session:
            secret = add_client(session, args)
        print(f"client {args.client_id} registered" + (f"; its secret (shown once): {secret}" if secret else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
