"""``klients-billing``: migrate, seed the demo data, run the service, import the register, run billing.

    klients-billing import-register contracts.csv          # or .json; all rows or none
    klients-billing billing-run --period 2026-11 [--issue-date 2026-12-03]
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from klients_common.service_cli import main as service_main

from .settings import config


def _session():  # type: ignore[no-untyped-def]
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine, transaction

    return transaction(sessionmaker(make_engine(config()["DATABASE_URL"])))


def import_register(argv: list[str]) -> int:
    """Import the client register from a CSV or JSON file."""
    from klients_common.errors import ValidationFailed

    from .register import import_register as run_import

    parser = argparse.ArgumentParser(prog="klients-billing import-register")
    parser.add_argument("file", type=Path)
    parser.add_argument("--format", choices=["csv", "json"], default=None, help="default: from the file name")
    args = parser.parse_args(argv)
    fmt = args.format or ("json" if args.file.suffix.lower() == ".json" else "csv")
    try:
        with _session() as session:
            created, updated = run_import(db_session=session, text=args.file.read_text(encoding="utf-8-sig"),
                                          fmt=fmt, today=datetime.now(UTC).date())
    except ValidationFailed as exc:
        print(f"{args.file}: {exc.detail}", file=sys.stderr)
        for error in exc.extra.get("errors", []):  # type: ignore[attr-defined]
            print(f"  {error}", file=sys.stderr)
        return 2
    print(f"{args.file}: {created} contracts created, {updated} updated")
    return 0


def billing_run(argv: list[str]) -> int:
    """Issue the period's invoices (a second run issues nothing twice)."""
    from .invoicing import billing_run as run

    parser = argparse.ArgumentParser(prog="klients-billing billing-run")
    parser.add_argument("--period", required=True, help="YYYY-MM")
    parser.add_argument("--issue-date", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    with _session() as session:
        issued = run(db_session=session, period=args.period, issue_date=args.issue_date or datetime.now(UTC).date())
    print(f"{args.period}: {issued} invoices issued")
    return 0


COMMANDS = {"import-register": import_register, "billing-run": billing_run}


def main(argv: list[str] | None = None) -> int:
    """Run one billing command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    return service_main(
        "klients-billing",
        package="klients_billing",
        service="klients_billing.service:BillingService",
        config=config,
        seed="klients_billing.demo:seed", argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
