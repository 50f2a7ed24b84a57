"""``klients-identity``: migrate the database, rotate signing keys, serve."""

from __future__ import annotations

import argparse
import os
import sys

from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine, migrate, transaction

from . import keys
from .settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Run one identity command."""
    parser = argparse.ArgumentParser(prog="klients-identity")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="upgrade the database and make sure a signing key exists")
    rotate = sub.add_parser("rotate-keys", help="create the next signing key")
    rotate.add_argument("--now", action="store_true", help="sign with it at once (first key, emergencies)")
    serve = sub.add_parser("serve", help="serve identity with gunicorn")
    serve.add_argument("--bind", default=os.environ.get("IDENTITY_BIND", "127.0.0.1:8001"))
    serve.add_argument("--workers", default=os.environ.get("IDENTITY_WORKERS", "2"))
    args = parser.parse_args(argv)
    settings = Settings.from_env()

    if args.command == "serve":
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--workers",
                                   str(args.workers), "--threads", "8", "--access-logfile", "-",
                                   "klients_identity:create_app()"])
    factory = sessionmaker(make_engine(settings.database_url))
    if args.command == "migrate":
        migrate("klients_identity", settings.database_url)
        with transaction(factory) as session:
            keys.ensure_key(session, token_ttl=settings.access_token_ttl)
    elif args.command == "rotate-keys":
        with transaction(factory) as session:
            key = keys.rotate(session, publish_ahead=0 if args.now else settings.key_publish_ahead,
                              token_ttl=settings.access_token_ttl)
            print(f"new key {key.kid} signs from {key.active_from.isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
