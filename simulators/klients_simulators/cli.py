"""``klients-simulators payments --bind 127.0.0.1:8090``: serve a simulator (one process: state is in memory)."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Serve one simulator."""
    parser = argparse.ArgumentParser(prog="klients-simulators")
    parser.add_argument("simulator", choices=["payments", "banks", "eparaksts", "smartid"])
    parser.add_argument("--bind", default="127.0.0.1:8090")
    args = parser.parse_args(argv)
    os.execvp(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", args.bind, "--workers", "1",
                               "--threads", "8", f"klients_simulators.{args.simulator}:create_app()"])


if __name__ == "__main__":
    sys.exit(main())
