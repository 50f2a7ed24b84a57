"""``klients-portal``: ``serve`` (gunicorn), ``migrate`` (the session table), ``purge-sessions`` (delete ended
sessions and expired rate-limit counters; run it from a timer), ``new-session-key`` (print a fresh key for
``PORTAL_SESSION_KEY``)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run a portal command."""
    parser = argparse.ArgumentParser(prog="klients-portal")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the portal with gunicorn")
    serve.add_argument("--bind", default=os.environ.get("PORTAL_BIND", "127.0.0.1:3000"))
    serve.add_argument("--workers", default=os.environ.get("PORTAL_WORKERS", "2"))
    serve.add_argument("--threads", default=os.environ.get("PORTAL_THREADS", "8"))
    sub.add_parser("migrate", help="create or upgrade the session table")
    sub.add_parser("purge-sessions", help="delete the sessions that have ended")
    sub.add_parser("new-session-key", help="print a fresh key for PORTAL_SESSION_KEY")
    args = parser.parse_args(argv)
    if args.command == "new-session-key":
        from .crypto import new_key

        print(new_key())
        return 0
    if args.command == "serve":
        os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--workers",
                                   str(args.workers), "--threads", str(args.threads), "klients_portal:serve_app()"])
    from klients_common.db import migrate

    from .settings import Settings

    settings = Settings.from_env()
    if args.command == "migrate":
        migrate("klients_portal", settings.database_url)
    else:
        from datetime import timedelta

        from sqlalchemy.orm import sessionmaker

        from klients_common.db import make_engine
        from klients_common.ratelimit import purge_expired

        from .crypto import TokenCipher
        from .store import Store

        engine = make_engine(settings.database_url)
        store = Store(sessionmaker(engine), idle=timedelta(minutes=settings.session_idle_minutes),
                      lifetime=timedelta(hours=settings.session_hours), cipher=TokenCipher(settings.session_keys))
        print(f"{store.purge()} ended sessions deleted, {purge_expired(engine)} expired rate-limit counters deleted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
