"""``klients-notifications``: migrate, run the service, and the operators' dead-letter commands.

    klients-notifications dead-letters            # list the events that could not be applied, oldest first
    klients-notifications resend ID [ID ...]      # put dead letters back on their queues
    klients-notifications resend --all
"""

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
        argv=sys.argv[1:] if argv is None else argv,
    )


if __name__ == "__main__":
    sys.exit(main())
