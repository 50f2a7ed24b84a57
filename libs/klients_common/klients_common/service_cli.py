"""The command line every nameko service shares: ``migrate``, ``seed-demo``, ``run``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def main(prog: str, *, package: str, service: str, config: Callable[[], dict[str, Any]],
         seed: str | None = None, argv: list[str] | None = None) -> int:
    """Run one command for the service whose class is at ``service`` (``module:Class``)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("command", choices=["migrate", "seed-demo", "run"])
    args = parser.parse_args(argv)
    if args.command == "run":
        from .green import patch, run_services

        patch()
        run_services(config(), _load(service))
        return 0

    from sqlalchemy.orm import sessionmaker

    from .db import make_engine, migrate, transaction

    url = config()["DATABASE_URL"]
    if args.command == "migrate":
        migrate(package, url)
    elif seed is not None:
        with transaction(sessionmaker(make_engine(url))) as session:
            print(f"{prog}: {_load(seed)(session)} demo rows added")
    return 0
