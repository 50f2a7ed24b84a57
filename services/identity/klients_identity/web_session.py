"""Server-side sessions for identity's pages: the cookie carries a random id only (stored hashed); the
state (login, pending authorization request, CSRF token, provider sessions with their secrets) stays in
the database. Cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` unless configured off for local http."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from .models import BrowserSession, as_utc, utcnow

LIFETIME = timedelta(hours=8)


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg,misc]
    """A dict that remembers whether it changed."""

    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None, new: bool = False) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid or secrets.token_urlsafe(32)
        self.new = new
        self.modified = False

    def rotate(self) -> None:
        """Give the session a new id (after login), so an id planted before login is worthless."""
        self.old_sid = self.sid
        self.sid = secrets.token_urlsafe(32)
        self.modified = True


def _hash(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class DatabaseSessionInterface(SessionInterface):  # type: ignore[misc]
    """Flask session interface backed by the ``browser_sessions`` table."""

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        """Load the browser's session, or start a new one."""
        from . import db

        sid = request.cookies.get(self.get_cookie_name(app))
        if sid:
            row = db().get(BrowserSession, _hash(sid))
            if row is not None and as_utc(row.expires_at) > utcnow():
                return ServerSession(dict(row.data), sid)
        return ServerSession(new=True)

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        """Store the session and set the cookie when it changed."""
        from . import db

        name = self.get_cookie_name(app)
        if not session.modified:
            return
        old = getattr(session, "old_sid", None)
        if old:
            row = db().get(BrowserSession, _hash(old))
            if row is not None:
                db().delete(row)
        row = db().get(BrowserSession, _hash(session.sid))
        expires = utcnow() + LIFETIME
        if not session:
            if row is not None:
                db().delete(row)
            db().commit()
            response.delete_cookie(name, path="/")
            return
        if row is None:
            db().add(BrowserSession(id_hash=_hash(session.sid), data=dict(session), expires_at=expires))
        else:
            row.data, row.expires_at = dict(session), expires
        db().commit()
        response.set_cookie(name, session.sid, expires=expires, httponly=True, path="/",
                            secure=app.config["SESSION_COOKIE_SECURE"], samesite="Lax")
