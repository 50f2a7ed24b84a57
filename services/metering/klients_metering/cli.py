"""``klients-metering``: migrate, seed the demo data, run the service."""

from __future__ import annotations

import sys

from klients_common.service_cli import main as service_main

from .settings import config


def main(argv: list[str] | None = None) -> int:
    """Run one metering command."""
    return service_main(
        "klients-metering",
        package="klients_metering",
        service="klients_metering.service:MeteringService",
        config=config,
        seed="klients_metering.demo:seed", argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
