"""The Smart-ID pages: the personal code (notification with the verification code) or the device link, then
one poll per page load until the person confirms in the app."""

from __future__ import annotations

from typing import Any

from flask import current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common.personal_code import normalise_personal_code

from .. import limits, pages
from ..connectors.base import LoginFailed
from ..connectors.smartid import SmartIdSession
from ..limits import limiter, login_limit
from .providers import smartid_client
from .signin import failed
from .strong import finish_strong_login


def smartid() -> Any:
    """Return the app's Smart-ID connector (built on first use from settings)."""
    if "klients_smartid" not in current_app.extensions:
        current_app.extensions["klients_smartid"] = smartid_client(current_app.config["SETTINGS"])
    return current_app.extensions["klients_smartid"]


def smartid_start_page() -> ResponseReturnValue:
    """Ask for the personal code (or offer the device link)."""
    return pages.render("smartid_start.html", hint=session.get("login_hint"))


@limiter.limit(login_limit)
def smartid_start() -> ResponseReturnValue:
    """Start a Smart-ID session and show the verification code or the device link."""
    pages.check_csrf()
    client = smartid()
    try:
        if request.form.get("flow") == "device_link":
            started = client.start_device_link()
        else:
            try:
                code = normalise_personal_code(request.form.get("personal_code", ""))
            except ValueError as exc:
                return pages.render("smartid_start.html", 422, error=str(exc), hint=request.form.get("personal_code"))
            if not limits.account_hit("push", code):  # per personal code, from any address; same for anyone
                return limits.too_many_page()
            started = client.start_notification(code)
    except LoginFailed as error:
        return failed(error, url_for("login.smartid_start_page"))
    session["smartid"] = started.to_dict()
    session.pop("smartid_shown", None)
    return redirect(url_for("login.smartid_wait"))


def smartid_wait() -> ResponseReturnValue:
    """Poll the Smart-ID session once; show the code while it runs, finish or fail when it ends."""
    state = session.get("smartid")
    if not state:
        return redirect(url_for("login.smartid_start_page"))
    client = smartid()
    started = SmartIdSession.from_dict(state)
    if not session.get("smartid_shown"):
        # Show the verification code (or link) first: the person must see it before confirming in the app.
        session["smartid_shown"] = True
        link = client.device_link_url(started) if started.flow == "device_link" else None
        return pages.render("smartid_wait.html", verification_code=started.verification_code, device_link=link)
    try:
        identity = client.poll(started)
    except LoginFailed as error:
        session.pop("smartid", None)
        return failed(error, url_for("login.smartid_start_page"))
    if identity is None:
        link = client.device_link_url(started) if started.flow == "device_link" else None
        return pages.render("smartid_wait.html", verification_code=started.verification_code, device_link=link)
    session.pop("smartid", None)
    return finish_strong_login(identity)
