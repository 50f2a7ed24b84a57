"""The command line every nameko service shares: ``migrate`` (database and the component's part of the bus),
``seed-demo``, ``run``, and the operators' ``dead-letters`` / ``resend``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any


def _load(path: str) -> Any:
    module, _, attr = path.partition(":")
    return getattr(importlib.import_module(module), attr)


def migrate_bus(component: str, settings: dict[str, Any], optional: tuple[str, ...] = ()) -> None:
    """Declare the component's exchanges, queues and dead-letter queue on the broker (idempotent)."""
    from .bus import declare

    queues = declare(settings["AMQP_URI"], component, settings["BUS_DELIVERY_LIMIT"], optional=optional)
    print(f"klients-{component}: bus topology declared ({len(queues)} queues)")


def run(config: dict[str, Any], *services: str) -> None:
    """Run the nameko services at ``services`` (``module:Class`` paths) until stopped: eventlet patches the
    standard library first, and only then are the services' modules imported."""
    from .green import patch, run_services

    patch()
    run_services(config, *(_load(path) for path in services))


BUS_COMMANDS = ("dead-letters", "resend")


def bus_command(prog: str, component: str, argv: list[str], settings: dict[str, Any]) -> int:
    """Run the operators' ``dead-letters`` / ``resend`` (``argv[0]`` is one of ``BUS_COMMANDS``)."""
    from .bus import dead_letter_command

    return dead_letter_command(prog, component, argv, settings["AMQP_URI"], settings["BUS_USER_PREFIX"])


def main(prog: str, *, package: str, service: str, config: Callable[[], dict[str, Any]],
         seed: str | None = None, argv: list[str] | None = None) -> int:
    """Run one command for the service whose class is at ``service`` (``module:Class``)."""
    import sys

    argv = sys.argv[1:] if argv is None else argv
    component = package.removeprefix("klients_")
    if argv[:1] and argv[0] in BUS_COMMANDS:
        return bus_command(prog, component, argv, config())
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("command", choices=["migrate", "seed-demo", "run"])
    args = parser.parse_args(argv)
    if args.command == "run":
        run(config(), service)
        return 0

    from sqlalchemy.orm import sessionmaker

    from .db import make_engine, migrate, transaction

    url = config()["DATABASE_URL"]
    if args.command == "migrate":
        migrate(package, url)
        migrate_bus(component, config())
    elif seed is not None:
        with transaction(sessionmaker(make_engine(url))) as session:
            print(f"{prog}: {_load(seed)(session)} demo rows added")
    return 0
