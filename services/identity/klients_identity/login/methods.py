"""The login blueprint: the method choice, giving up, and the route of every method's page (``smartid``,
``eparaksts``, ``bank``; e-mail has its own blueprint, ``email_login``)."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from .. import pages
from ..oauth.endpoints import access_denied
from . import bank, eparaksts, smartid

bp = Blueprint("login", __name__, url_prefix="/login")


def methods(strong_only: bool) -> list[dict[str, str]]:
    """Return the login methods offered, in order."""
    enabled = current_app.extensions["klients_login_methods"]
    offered = [{"key": "smart_id", "url": url_for("login.smartid_start_page")}] if "smart_id" in enabled else []
    if "eparaksts" in enabled:
        offered.append({"key": "eparaksts", "url": url_for("login.eparaksts_start")})
    if "bank" in enabled:
        offered.append({"key": "bank", "url": url_for("login.bank_choose")})
    if not strong_only and "email" in enabled:
        offered.append({"key": "email", "url": url_for("email.login_page")})
    return offered


@bp.get("")
def choose() -> ResponseReturnValue:
    """Show the login methods."""
    if request.args.get("hint"):
        session["login_hint"] = request.args["hint"]
    strong = request.args.get("strong") == "1"
    return pages.render("choose.html", methods=methods(strong), strong=strong)


@bp.post("/cancel")
def cancel() -> ResponseReturnValue:
    """The person gives up logging in: the client that sent them gets ``error=access_denied`` (with its
    ``state`` and ``iss``); without a pending request, the method choice again."""
    pages.check_csrf()
    pending = session.pop("pending_authorize", None)
    for key in ("smartid", "smartid_shown", "eparaksts_state", "bank_attempt", "login_hint"):
        session.pop(key, None)
    if not pending:
        return redirect(url_for("login.choose"), code=303)
    return access_denied(pending)


ROUTES = (  # each method's pages, in their modules; the endpoints keep the blueprint's name (``login.bank_done``)
    ("/smart-id", smartid.smartid_start_page, ["GET"]), ("/smart-id", smartid.smartid_start, ["POST"]),
    ("/smart-id/wait", smartid.smartid_wait, ["GET"]),
    ("/eparaksts", eparaksts.eparaksts_start, ["GET"]),
    ("/eparaksts/callback", eparaksts.eparaksts_callback, ["GET"]),
    ("/bank", bank.bank_choose, ["GET"]), ("/bank/<bank_id>", bank.bank_start, ["POST"]),
    ("/bank/<bank_id>/return", bank.bank_return, ["GET", "POST"]),
    ("/bank/<bank_id>/done", bank.bank_done, ["GET"]),
)
for _rule, _view, _methods in ROUTES:
    bp.add_url_rule(_rule, view_func=_view, methods=_methods)
