"""Server-side sessions: the browser's one cookie holds a random id; everything else is in the portal's
database (``PortalSession``), so any replica serves any request.

- A session is made when the portal first needs to remember something (a login started, a CSRF secret for a
  form, the language chosen); a new id is issued at login (no fixation) and the row is deleted at logout.
- It ends after ``PORTAL_SESSION_IDLE_MINUTES`` unused, and ``PORTAL_SESSION_HOURS`` after it began.
- Tokens sit in their own columns, encrypted (``crypto.TokenCipher``: AES-GCM under ``PORTAL_SESSION_KEY``,
  bound to the row), and are changed only under the row's lock (``SELECT ... FOR UPDATE``, and
  a lock per session within the process, which SQLite needs), so two requests refreshing at once use the
  refresh token once: the second one finds the tokens the first one stored.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from klients_common.db import as_utc, transaction
from klients_common.digests import secret_digest

from .crypto import TokenCipher
from .models import PortalSession

COOKIE = "klients_portal"
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


def utcnow() -> datetime:
    """Now, aware UTC."""
    return datetime.now(UTC)


def hash_id(raw: str) -> str:
    """The key a cookie's id is stored under."""
    return secret_digest(raw)


@dataclass
class Tokens:
    """A session's tokens (server-side only)."""

    access_token: str | None = None
    access_expires_at: datetime | None = None
    refresh_token: str | None = None
    id_token: str | None = None


@dataclass
class BrowserSession:
    """The session of the current request."""

    raw_id: str
    id_hash: str
    data: dict[str, Any]
    tokens: Tokens
    expires_at: datetime
    last_seen_at: datetime
    new: bool = False
    dirty: bool = False
    expired: bool = False  # the cookie named a session that ended (shown as "your session expired")
    removed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def logged_in(self) -> bool:
        """Whether a login's tokens are here."""
        return bool(self.tokens.refresh_token or self.tokens.access_token)

    def set(self, key: str, value: Any) -> None:
        """Remember ``value``."""
        self.data[key] = value
        self.dirty = True

    def pop(self, key: str, default: Any = None) -> Any:
        """Forget ``key``, returning what it was."""
        if key in self.data:
            self.dirty = True
        return self.data.pop(key, default)


class Store:
    """Sessions in the portal's database."""

    def __init__(self, factory: sessionmaker[Session], *, idle: timedelta, lifetime: timedelta,
                 cipher: TokenCipher) -> None:
        self.factory = factory
        self.cipher = cipher
        self.idle = idle
        self.lifetime = lifetime
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def load(self, raw_id: str | None) -> BrowserSession | None:
        """Return the live session the cookie names; None when there is none. A session that ended is
        deleted and returned with ``expired`` set when it held a login."""
        if not raw_id or len(raw_id) > 128:
            return None
        now = utcnow()
        with transaction(self.factory) as db:
            row = db.get(PortalSession, hash_id(raw_id))
            if row is None:
                return None
            session = self._from_row(raw_id, row)
            ended = as_utc(row.expires_at) <= now or as_utc(row.last_seen_at) + self.idle <= now
            if ended:
                db.delete(row)
                session.expired = session.logged_in
                return session
            if now - as_utc(row.last_seen_at) >= TOUCH_EVERY:
                row.last_seen_at = now
            return session

    def create(self, data: dict[str, Any] | None = None) -> BrowserSession:
        """Return a new, not yet stored session."""
        raw = secrets.token_urlsafe(32)
        now = utcnow()
        return BrowserSession(raw_id=raw, id_hash=hash_id(raw), data=dict(data or {}), tokens=Tokens(),
                              expires_at=now + self.lifetime, last_seen_at=now, new=True, dirty=True)

    def save(self, session: BrowserSession) -> None:
        """Store the session's data (not its tokens: ``update_tokens`` does that)."""
        with transaction(self.factory) as db:
            row = db.get(PortalSession, session.id_hash)
            if row is None:
                row = PortalSession(id_hash=session.id_hash, created_at=utcnow(), expires_at=session.expires_at,
                                    last_seen_at=session.last_seen_at)
                self._tokens_to_row(session.tokens, row)
                db.add(row)
            row.data = dict(session.data)
        session.new = session.dirty = False

    def delete(self, session: BrowserSession) -> None:
        """End the session (logout, or replaced by a new id at login)."""
        with transaction(self.factory) as db:
            db.execute(delete(PortalSession).where(PortalSession.id_hash == session.id_hash))
        session.removed = True

    @contextmanager
    def locked_tokens(self, session: BrowserSession) -> Iterator[Callable[[Tokens], None]]:
        """Lock the session's tokens: load the freshest into ``session.tokens`` and yield a function that
        stores new ones; the lock holds until the block ends."""
        with self._lock_for(session.id_hash), transaction(self.factory) as db:
            row = db.execute(select(PortalSession).where(PortalSession.id_hash == session.id_hash)
                             .with_for_update()).scalar_one_or_none()
            if row is not None:
                session.tokens = self._tokens_of(row)

            def store(tokens: Tokens) -> None:
                session.tokens = tokens
                if row is not None:
                    self._tokens_to_row(tokens, row)
                    db.flush()

            yield store

    def set_tokens(self, session: BrowserSession, tokens: Tokens) -> None:
        """Store tokens (the session must exist)."""
        with self.locked_tokens(session) as store:
            store(tokens)

    def purge(self) -> int:
        """Delete every session that has ended; return how many."""
        now = utcnow()
        with transaction(self.factory) as db:
            result = db.execute(delete(PortalSession).where(
                (PortalSession.expires_at <= now) | (PortalSession.last_seen_at <= now - self.idle)))
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _lock_for(self, key: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks.clear()
            return self._locks.setdefault(key, threading.Lock())

    def _tokens_of(self, row: PortalSession) -> Tokens:
        def open_(column: str) -> str | None:
            return self.cipher.decrypt(getattr(row, column), row=row.id_hash, column=column)

        return Tokens(access_token=open_("access_token"),
                      access_expires_at=as_utc(row.access_expires_at) if row.access_expires_at else None,
                      refresh_token=open_("refresh_token"), id_token=open_("id_token"))

    def _tokens_to_row(self, tokens: Tokens, row: PortalSession) -> None:
        def seal(column: str, value: str | None) -> str | None:
            return self.cipher.encrypt(value, row=row.id_hash, column=column)

        row.access_token, row.access_expires_at = seal("access_token", tokens.access_token), tokens.access_expires_at
        row.refresh_token, row.id_token = seal("refresh_token", tokens.refresh_token), seal("id_token", tokens.id_token)

    def _from_row(self, raw_id: str, row: PortalSession) -> BrowserSession:
        return BrowserSession(raw_id=raw_id, id_hash=row.id_hash, data=dict(row.data or {}),
                              tokens=self._tokens_of(row), expires_at=as_utc(row.expires_at),
                              last_seen_at=as_utc(row.last_seen_at))
