"""The end of every login, whatever the method: the new login in a fresh session and the authorization
request resumed; or why it failed, and a person who cancelled sent back to the client."""

from __future__ import annotations

from flask import redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import pages
from ..connectors.base import LoginFailed
from ..oauth.endpoints import access_denied, pending_key


def signed_in(sid: str) -> ResponseReturnValue:
    """Put the new login in a fresh session (new id) and resume the authorization request, if any."""
    pending = session.get("pending_authorize")
    lang = session.get("lang", "lv")
    csrf = session.get("csrf")
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session.update({"sid": sid, "lang": lang})
    if csrf:
        session["csrf"] = csrf
    if pending:
        # The new login answers this request even with prompt=login or max_age=0 (and only this one: any
        # other request, or this one again later, is judged by the login's auth_time as usual).
        session["fresh_for"] = pending_key(pending)
        return redirect(f"{url_for('oidc.authorize')}?{pending}", code=303 if request.method == "POST" else 302)
    return pages.render("signed_in.html", 200)


# Failures that are the person's own choice: they cancelled, or refused in their app or at their bank.
CANCELLED_CODES = frozenset({"eparaksts_cancelled", "cancelled"})


def cancelled(error: LoginFailed) -> bool:
    """Return whether the login failed because the person chose not to log in."""
    return error.code in CANCELLED_CODES or error.code.startswith("user_refused")


def failed(error: LoginFailed, retry_url: str) -> ResponseReturnValue:
    """Show why a login failed and what to do; nothing is signed in. A person who cancelled goes back to
    the client that sent them (``error=access_denied``); after other failures the page offers that too."""
    pending = session.get("pending_authorize")
    if pending and cancelled(error):
        session.pop("pending_authorize", None)
        return access_denied(pending)
    return pages.render("error.html", 401, title_key="failed", message=error.message(pages.current_lang()),
                        retry_url=retry_url if error.retry else None)
