"""``klients-notifications``: migrate, run the service, and the operators' dead-letter commands.

    klients-notifications dead-letters            # list what could not be sent, newest first
    klients-notifications resend 42 [43 ...]      # put dead letters back on their queue
    klients-notifications resend --all
"""

from __future__ import annotations

import argparse
import sys

from klients_common.service_cli import main as service_main

from .settings import config


def dead_letters(argv: list[str]) -> int:
    """List dead letters, or re-send them."""
    from sqlalchemy import select
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import make_engine

    from .models import DeadLetter
    from .retry import resend

    parser = argparse.ArgumentParser(prog="klients-notifications")
    parser.add_argument("command", choices=["dead-letters", "resend"])
    parser.add_argument("ids", nargs="*", type=int)
    parser.add_argument("--all", action="store_true", help="resend every dead letter not yet re-sent")
    args = parser.parse_args(argv)
    settings = config()
    with sessionmaker(make_engine(settings["DATABASE_URL"]))() as session:
        if args.command == "dead-letters":
            for letter in session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(200)):
                state = f"re-sent {letter.resent_at:%Y-%m-%d %H:%M}" if letter.resent_at else "waiting"
                print(f"{letter.id}\t{letter.created_at:%Y-%m-%d %H:%M}\t{letter.reason}\t{letter.error or ''}\t"
                      f"{letter.queue}\tevent {letter.event_id}\t{state}")
            return 0
        query = select(DeadLetter).where(DeadLetter.resent_at.is_(None)) if args.all else \
            select(DeadLetter).where(DeadLetter.id.in_(args.ids))
        letters = list(session.scalars(query))
        for letter in letters:
            resend(session, settings["AMQP_URI"], letter)
        print(f"{len(letters)} dead letter(s) re-sent")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run one notifications command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in ("dead-letters", "resend"):
        return dead_letters(argv)
    return service_main(
        "klients-notifications",
        package="klients_notifications",
        service="klients_notifications.service:NotificationsService",
        config=config,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
