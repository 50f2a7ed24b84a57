"""``klients-metering``: migrate, seed the demo data, run the service, record a reading by hand.

    klients-metering record-reading LVG-100001 G4-2019-000101 2345 --source operator --date 2026-11-30

stores an operator's (or the utility's ``actual``, or an ``estimated``) reading outside the window and
announces it like any other accepted reading.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime

from klients_common.service_cli import main as service_main

from .settings import config


def record_reading(argv: list[str]) -> int:
    """Store one operator, actual or estimated reading."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine, transaction
    from klients_common.errors import KlientsError

    from . import readings

    parser = argparse.ArgumentParser(prog="klients-metering record-reading")
    parser.add_argument("contract")
    parser.add_argument("meter")
    parser.add_argument("value", type=int)
    parser.add_argument("--source", choices=["operator", "actual", "estimated"], default="operator")
    parser.add_argument("--date", type=date.fromisoformat, default=None, help="YYYY-MM-DD, default today")
    parser.add_argument("--rollover", action="store_true", help="the register passed its maximum")
    parser.add_argument("--operator", default=None, help="who records it (for the audit trail)")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    try:
        with transaction(sessionmaker(make_engine(config()["DATABASE_URL"]))) as session:
            reading = readings.record_reading(
                db_session=session, contract=args.contract, serial=args.meter, value=args.value,
                read_on=args.date or now.date(), source=args.source, now=now, rollover=args.rollover,
                actor=readings.Actor(args.operator, "operator") if args.operator else None)
            print(f"reading {reading.id} stored: {reading.value} m³ on {reading.read_on} ({reading.source})")
    except KlientsError as exc:
        print(f"refused: {exc.detail} {exc.extra or ''}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one metering command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["record-reading"]:
        return record_reading(argv[1:])
    return service_main(
        "klients-metering",
        package="klients_metering",
        service="klients_metering.service:MeteringService",
        config=config,
        seed="klients_metering.demo:seed", argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
