"""Server-side sessions for identity's pages: the cookie carries a random id only (stored hashed); the
state (login, pending authorization request, CSRF token, provider sessions with their secrets) stays in
the database. Cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` unless configured off for local http.

A row is written only once something worth keeping is stored. A visitor who only looks at pages (and gets
a form's CSRF token) has no row: the token is derived from the random id in the cookie (``csrf_for``), and
a chosen language lives in a preference cookie of its own. The first time real state is stored the
session gets a fresh id (an id planted in a browser beforehand never reaches the database).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response, request
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from klients_common.digests import secret_digest

from ..db import db
from ..models import BrowserSession, as_utc, utcnow

LIFETIME = timedelta(hours=8)
LIGHT = frozenset({"csrf", "lang"})  # what a session without a row may hold
SID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")


def csrf_for(sid: str) -> str:
    """Return the CSRF token of a session that has no row yet (only its cookie knows the id)."""
    return base64.urlsafe_b64encode(hashlib.sha256(b"klients-csrf\0" + sid.encode()).digest()).decode().rstrip("=")


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg,misc]
    """A dict that remembers whether it changed."""

    def __init__(self, initial: dict[str, Any] | None = None, sid: str | None = None, new: bool = False,
                 stored: bool = False) -> None:
        def on_update(_: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid or secrets.token_urlsafe(32)
        self.new = new
        self.stored = stored  # has a row in the database
        self.modified = False
        self.accessed = False

    def __getitem__(self, key: str) -> Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        """Return a value (and remember the session was read)."""
        self.accessed = True
        return super().get(key, default)

    def rotate(self) -> None:
        """Give the session a new id (after login), so an id planted before login is worthless."""
        self.old_sid = self.sid
        self.sid = secrets.token_urlsafe(32)
        self.modified = True


class DatabaseSessionInterface(SessionInterface):  # type: ignore[misc]
    """Flask session interface backed by the ``browser_sessions`` table. ``sessionless``: paths that never use
    a browser session (the token endpoint and the other JSON endpoints clients call): they get Flask's null
    session (nothing read, nothing stored, no cookie), without the random id and CSRF token a page's new
    session is given."""

    def __init__(self, sessionless: frozenset[str] = frozenset()) -> None:
        self.sessionless = sessionless

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        """Load the browser's session, or start one without a row (none on a ``sessionless`` path)."""
        if request.path in self.sessionless:
            return self.make_null_session(app)
        name = self.get_cookie_name(app)
        sid = request.cookies.get(name, "")
        if SID.match(sid):
            row = db().get(BrowserSession, secret_digest(sid))
            if row is not None and as_utc(row.expires_at) > utcnow():
                return ServerSession(dict(row.data), sid, stored=True)
        else:
            sid = secrets.token_urlsafe(32)
        light: dict[str, Any] = {"csrf": csrf_for(sid)}
        if request.cookies.get(f"{name}_lang") in ("lv", "en"):
            light["lang"] = request.cookies[f"{name}_lang"]
        return ServerSession(light, sid, new=True)

    def save_session(self, app: Flask, session: ServerSession, response: Response) -> None:  # type: ignore[override]
        """Store the session (a row only when it holds more than a light session may) and set the cookie."""
        name = self.get_cookie_name(app)
        secure = app.config["SESSION_COOKIE_SECURE"]
        if not session.stored and set(session) <= LIGHT and dict.get(session, "csrf") == csrf_for(session.sid):
            if session.accessed and request.cookies.get(name) != session.sid:
                response.set_cookie(name, session.sid, expires=utcnow() + LIFETIME, httponly=True, path="/",
                                    secure=secure, samesite="Lax")
            if "lang" in session and request.cookies.get(f"{name}_lang") != session["lang"]:
                response.set_cookie(f"{name}_lang", session["lang"], max_age=365 * 24 * 3600, httponly=True,
                                    path="/", secure=secure, samesite="Lax")
            return
        if not session.modified:
            return
        old = getattr(session, "old_sid", None)
        if old:
            row = db().get(BrowserSession, secret_digest(old))
            if row is not None:
                db().delete(row)
        if not session.stored and not old:
            session.sid = secrets.token_urlsafe(32)  # first stored state: an id of our own making
        row = db().get(BrowserSession, secret_digest(session.sid)) if session.stored else None
        expires = utcnow() + LIFETIME
        if not session:
            if row is not None:
                db().delete(row)
            db().commit()
            response.delete_cookie(name, path="/")
            return
        if row is None:
            db().add(BrowserSession(id_hash=secret_digest(session.sid), data=dict(session), expires_at=expires))
        else:
            row.data, row.expires_at = dict(session), expires
        db().commit()
        response.set_cookie(name, session.sid, expires=expires, httponly=True, path="/",
                            secure=secure, samesite="Lax")
