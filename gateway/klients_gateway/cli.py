"""``klients-gateway serve``: run the gateway with gunicorn (threads share one RPC client), on the public bind
and on the internal one (``/metrics``, ``/readyz``): the same workers answer both, and the app tells them
apart by the port each connection came in on (``klients_common.web``)."""

from __future__ import annotations

import argparse
import os
import sys

from .settings import internal_bind


def main(argv: list[str] | None = None) -> int:
    """Serve the gateway."""
    parser = argparse.ArgumentParser(prog="klients-gateway")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--bind", default=os.environ.get("GATEWAY_BIND", "127.0.0.1:8000"))
    parser.add_argument("--internal-bind", default=internal_bind(),
                        help="the internal port: /metrics and /readyz (GATEWAY_INTERNAL_BIND)")
    parser.add_argument("--workers", default=os.environ.get("GATEWAY_WORKERS", "2"))
    parser.add_argument("--threads", default=os.environ.get("GATEWAY_THREADS", "16"))
    args = parser.parse_args(argv)
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--bind", args.internal_bind,
                               "--workers", str(args.workers),
                               "--threads", str(args.threads), "klients_gateway:serve_app()"])


if __name__ == "__main__":
    sys.exit(main())
