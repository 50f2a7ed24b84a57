"""Turning reminders off: a signed link in every reminder (and the ``List-Unsubscribe`` header) that
works without logging in, and the check before a reminder is sent. Security messages are never subject
to preferences."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

from sqlalchemy.orm import Session

from klients_common import constant_time

from .models import Preference

REMINDER_TEMPLATES = frozenset({"reading_window_opened"})


def signature(secret: str, email: str) -> str:
    """Return the link's signature for ``email``."""
    return hmac.new(secret.encode(), f"reminders:{email.lower()}".encode(), hashlib.sha256).hexdigest()


def unsubscribe_link(base_url: str, secret: str, email: str) -> str:
    """Return the link that turns reminders off for ``email``."""
    return f"{base_url.rstrip('/')}/api/v1/notifications/unsubscribe?" + urlencode(
        {"email": email, "sig": signature(secret, email)})


def wants(session: Session, template: str, email: str) -> bool:
    """Return whether ``email`` should get ``template`` (only reminders can be turned off)."""
    if template not in REMINDER_TEMPLATES:
        return True
    row = session.get(Preference, email.lower())
    return row is None or row.reminders


def turn_off_reminders(session: Session, secret: str, email: str, sig: str) -> bool:
    """Turn reminders off for ``email`` if ``sig`` is right; return whether it was."""
    if not constant_time.equal(signature(secret, email), sig):
        return False
    row = session.get(Preference, email.lower()) or Preference(email=email.lower())
    row.reminders, row.updated_at = False, datetime.now(UTC)
    session.add(row)
    session.commit()
    return True


def language_of(session: Session, email: str) -> str | None:
    """Return the language the person at ``email`` chose in the portal, if identity told us."""
    row = session.get(Preference, email.lower())
    return row.language if row is not None else None


def apply_contact(session: Session, email: str, *, language: str | None, reminders: bool | None,
                  changed_at: datetime) -> bool:
    """Record a person's language and reminder choice for ``email``, unless a later change is already
    recorded (events may arrive out of order); return whether it was applied."""
    row = session.get(Preference, email.lower())
    if row is not None and row.updated_at is not None and as_aware(row.updated_at) > changed_at:
        return False
    row = row or Preference(email=email.lower(), reminders=True)
    if language in ("lv", "en"):
        row.language = language
    if isinstance(reminders, bool):
        row.reminders = reminders
    row.updated_at = changed_at
    session.add(row)
    return True


def as_aware(value: datetime) -> datetime:
    """Return ``value`` timezone-aware (SQLite gives naive UTC back)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
