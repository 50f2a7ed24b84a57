"""The eParaksts pages: off to LVRTC's authorization endpoint with a fresh ``state``, and back."""

from __future__ import annotations

import secrets

from flask import redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common import constant_time

from .. import pages
from ..connectors.base import LoginFailed
from ..limits import limiter, login_limit
from .providers import eparaksts
from .signin import failed
from .strong import finish_strong_login


@limiter.limit(login_limit)
def eparaksts_start() -> ResponseReturnValue:
    """Send the browser to eParaksts."""
    state = secrets.token_urlsafe(24)
    session["eparaksts_state"] = state
    return redirect(eparaksts().authorization_url(state=state, ui_locales=pages.current_lang()))


def eparaksts_callback() -> ResponseReturnValue:
    """Finish the eParaksts login (the state must be the one this browser was sent with, once)."""
    expected = session.pop("eparaksts_state", "")
    if not expected or not constant_time.equal(expected, request.args.get("state", "")):
        return pages.problem_page(400, "failed", pages.TEXT[pages.current_lang()]["expired"])
    try:
        identity = eparaksts().finish(code=request.args.get("code"), error=request.args.get("error"),
                                      error_description=request.args.get("error_description"))
    except LoginFailed as error:
        return failed(error, url_for("login.eparaksts_start"))
    return finish_strong_login(identity)
