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

from . import keys
from .settings import Settings


def ensure_portal_client(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """Create the public portal client if missing (PKCE, no secret)."""
    from .models import OAuthClient

    if session.get(OAuthClient, "klients-portal") is None:
        session.add(OAuthClient(client_id="klients-portal", name="Klients portal", secret_hash=None,
                                redirect_uris=list(settings.portal_redirect_uris),
                                post_logout_redirect_uris=[u.rsplit("/", 1)[0] + "/" for u in
                                                           settings.portal_redirect_uris],
                                scopes="openid profile email offline_access",
                                grant_types="authorization_code refresh_token"))


def ensure_portal_web_client(session, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    """The portal's confidential client ``klients-portal-web``, kept as configured: redirect URI
    ``<PORTAL_URL>/callback``, post-logout URI ``<PORTAL_URL>/``, secret ``PORTAL_CLIENT_SECRET`` or else the one
    in ``var/portal-client-secret`` (made at the first run, readable by its owner only; the portal reads it)."""
    from klients_common.settings import var_dir

    from .models import OAuthClient
    from .oauth2 import hasher

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
    from .oauth2 import hasher

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
    from .oauth2 import hasher

    secret = secrets.token_urlsafe(32) if args.confidential else None
    session.add(OAuthClient(client_id=args.client_id, name=args.name or args.client_id,
                            secret_hash=hasher.hash(secret) if secret else None, redirect_uris=args.redirect_uri,
                            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
                            scopes=args.scopes, grant_types="authorization_code refresh_token"))
    return secret


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
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command == "serve":
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--workers",
                                   str(args.workers), "--threads", os.environ.get("IDENTITY_THREADS", "8"),
                                   "klients_identity:serve_app()"])  # its own access lines: no query strings
    if args.command == "run":
        from klients_common.green import patch

        patch()
        from klients_common.green import run_services

        from .service import IdentityService

        services: list[type] = [IdentityService]
        if settings.keycloak_fronted:
            from .keycloak_sync import KeycloakSyncService

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
    elif args.command == "add-client":
        with transaction(factory) as session:
            secret = add_client(session, args)
        print(f"client {args.client_id} registered" + (f"; its secret (shown once): {secret}" if secret else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
