"""Process start-up for nameko services: cooperative I/O first, then the service runner."""

from __future__ import annotations

import logging.config
import signal
from typing import Any


def patch() -> None:
    """Monkey-patch for eventlet and make psycopg2 cooperative. Call before importing anything else."""
    import eventlet

    eventlet.monkey_patch()
    from psycogreen.eventlet import patch_psycopg

    patch_psycopg()


def run_services(config: dict[str, Any], *services: type) -> None:
    """Run ``services`` in one process until SIGINT/SIGTERM, then stop them gracefully."""
    import eventlet
    from nameko.runners import ServiceRunner

    logging.config.dictConfig(config["LOGGING"])
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)

    def _stop(*_: Any) -> None:
        eventlet.spawn_n(runner.stop)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    logging.getLogger("klients").info(
        "running %s on %s", ", ".join(s.name for s in services), config["AMQP_URI"].rsplit("@", 1)[-1]
    )
    runner.wait()
