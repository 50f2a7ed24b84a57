"""``klients-notifications``: migrate, seed the demo data, run the service."""

from __future__ import annotations

import sys

from klients_common.service_cli import main as service_main

from .settings import config


def main(argv: list[str] | None = None) -> int:
    """Run one notifications command."""
    return service_main(
        "klients-notifications",
        package="klients_notifications",
        service="klients_notifications.service:NotificationsService",
        config=config,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
