"""A local SMTP server for development and tests: every message lands as a file in a mail folder.

    python deploy/devsmtp.py --port 8025 --maildir var/mail

Each accepted message is written atomically to ``<maildir>/<timestamp>-<n>.eml`` (RFC 5322, as
received, with ``X-Klients-Envelope-To``), so a person can open it and a test can parse it back with
the ``email`` package. It is a real SMTP server (aiosmtpd): clients speak ordinary SMTP to it.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class MaildirHandler:
    """Writes each message to a file; refuses recipients in ``reject_domain`` (a mailbox that does not exist)."""

    def __init__(self, folder: Path, reject_domain: str | None = None) -> None:
        self.folder = folder
        self.reject_domain = reject_domain
        self.counter = itertools.count(1)
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        """Accept the recipient, unless its domain is the one configured to refuse (550)."""
        if self.reject_domain and address.lower().endswith("@" + self.reject_domain):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        """Store the message; answer 250."""
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{next(self.counter):06d}.eml"
        header = "".join(f"X-Klients-Envelope-To: {rcpt}\r\n" for rcpt in envelope.rcpt_tos)
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(header.encode() + envelope.original_content)
        tmp.rename(self.folder / name)
        return "250 Message accepted for delivery"


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--maildir", default="var/mail")
    parser.add_argument("--reject-domain", default="reject.invalid",
                        help="recipients at this domain are refused with 550 (to see permanent failures)")
    args = parser.parse_args()
    controller = Controller(MaildirHandler(Path(args.maildir), args.reject_domain), hostname=args.host,
                            port=args.port)
    controller.start()
    print(f"SMTP on {args.host}:{args.port}, mail kept in {Path(args.maildir).resolve()}", flush=True)
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
