"""``klients-identity``: migrate (and make sure a signing key and the portal client exist), rotate
signing keys, add an OAuth client, serve the web app, run the nameko service.

    klients-identity add-client my-service --confidential --redirect-uri https://svc.example/cb
    klients-identity add-client fapi-app --redirect-uri https://app.example/cb \
        --access-token-signed-response-alg ES256 --id-token-signed-response-alg ES256
"""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine, migrate, transaction
from klients_common.service_cli import BUS_COMMANDS, bus_command, migrate_bus, run
from klients_common.settings import nameko_config

from .oauth import keys
from .settings import Settings

IDENTITY_SERVICE = "klients_identity.events.service:IdentityService"  # nameko services, loaded by ``run``
KEYCLOAK_SYNC_SERVICE = "klients_identity.events.keycloak_sync:KeycloakSyncService"  # Keycloak-fronted mode only


def main(argv: list[str] | None = None) -> int:
    """Run one identity command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in BUS_COMMANDS:
        return bus_command("klients-identity", "identity", argv, nameko_config("identity"))
    parser = argparse.ArgumentParser(prog="klients-identity")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="upgrade the database; make sure a signing key and the portal client exist")
    rotate = sub.add_parser("rotate-keys", help="create the next signing key of each algorithm (or of --alg)")
    rotate.add_argument("--now", action="store_true", help="sign with it at once (first key, emergencies)")
    rotate.add_argument("--alg", choices=keys.ALGORITHMS, help="rotate only this algorithm's keys")
    client = sub.add_parser("add-client", help="register an OAuth client (PKCE S256 is required of all)")
    client.add_argument("client_id")
    client.add_argument("--name")
    client.add_argument("--confidential", action="store_true", help="give it a secret (printed once)")
    client.add_argument("--redirect-uri", action="append", required=True)
    client.add_argument("--post-logout-redirect-uri", action="append")
    client.add_argument("--scopes", default="openid profile email offline_access")
    algs = ", ".join(keys.ALGORITHMS)
    client.add_argument("--access-token-signed-response-alg", metavar="ALG",
                        help=f"sign its access tokens with ALG ({algs}; default RS256)")
    client.add_argument("--id-token-signed-response-alg", metavar="ALG",
                        help=f"sign its ID tokens with ALG ({algs}; default RS256)")
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
        run(nameko_config("identity", IDENTITY_ISSUER=settings.issuer,
                                    INVITATION_TTL_HOURS=settings.invitation_ttl_hours,
                                    KEYCLOAK_URL=settings.keycloak_url, PORTAL_REALM=settings.portal_realm,
                                    KEYCLOAK_SYNC_SECRET=settings.keycloak_sync_secret),
            IDENTITY_SERVICE, *([KEYCLOAK_SYNC_SERVICE] if settings.keycloak_fronted else []))
        return 0
    # Imported only for the commands that use them: ``run`` above must load nothing of identity's before
    # eventlet patches the standard library (``klients_common.service_cli.run``).
    from . import retention
    from .oauth import registration

    factory = sessionmaker(make_engine(settings.database_url))
    if args.command == "migrate":
        migrate("klients_identity", settings.database_url)
        migrate_bus("identity", nameko_config("identity"),
                    optional=("identity_keycloak_sync",) if settings.keycloak_fronted else ())
        with transaction(factory) as session:
            keys.ensure_key(session, token_ttl=settings.access_token_ttl)
            registration.ensure_portal_client(session, settings)
            registration.ensure_portal_web_client(session, settings)
            if settings.keycloak_fronted:
                registration.ensure_broker_client(session, settings)
    elif args.command == "rotate-keys":
        with transaction(factory) as session:
            for alg in [args.alg] if args.alg else keys.ALGORITHMS:
                key = keys.rotate(session, publish_ahead=0 if args.now else settings.key_publish_ahead,
                                  token_ttl=settings.access_token_ttl, alg=alg)
                print(f"new {alg} key {key.kid} signs from {key.active_from.isoformat()}")
    elif args.command == "purge":
        return retention.purge_command(make_engine(settings.database_url), every=args.every, batch=args.batch)
    elif args.command == "add-client":
        try:
            registration.check_redirect_uris(args.redirect_uri + (args.post_logout_redirect_uri or []))
            registration.client_metadata(args)
        except ValueError as exc:
            parser.error(str(exc))
        with transaction(factory) as session:
            secret = registration.add_client(session, args)
        print(f"client {args.client_id} registered" + (f"; its secret (shown once): {secret}" if secret else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
