"""``klients-billing``: migrate, seed the demo data, run the service."""

from __future__ import annotations

import sys

from klients_common.service_cli import main as service_main

from .settings import config


def main(argv: list[str] | None = None) -> int:
    """Run one billing command."""
    return service_main(
        "klients-billing",
        package="klients_billing",
        service="klients_billing.service:BillingService",
        config=config,
        seed="klients_billing.demo:seed", argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
