"""Small helpers the tests share: authorization headers, CSRF tokens of identity's forms, and the mail
the local SMTP server kept."""

from __future__ import annotations

import email
import re
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import requests


def bearer(token: str, idempotency_key: str | None = None) -> dict[str, str]:
    """Return the headers of an API call as ``token``'s holder (with an ``Idempotency-Key`` if given)."""
    headers = {"Authorization": f"Bearer {token}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def csrf_of(page: requests.Response) -> str:
    """Return the CSRF token of an identity form."""
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, "the page has no form"
    return match.group(1)


def mails(maildir: Path, *, to: str | None = None, subject: str | tuple[str, ...] | None = None,
          after: float | None = None) -> list[EmailMessage]:
    """Return the kept mail (oldest first) to ``to``, with ``subject`` (one of them), written after ``after``."""
    subjects = (subject,) if isinstance(subject, str) else subject
    found = []
    for path in sorted(maildir.glob("*.eml"), key=lambda p: p.stat().st_mtime):
        if after is not None and path.stat().st_mtime < after:
            continue
        message = email.message_from_bytes(path.read_bytes(), policy=default)
        if (to is None or message["To"] == to) and (subjects is None or message["Subject"] in subjects):
            found.append(message)
    return found
