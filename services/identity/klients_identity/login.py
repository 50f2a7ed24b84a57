"""The login pages: method choice, Smart-ID (notification with the verification code, or device link),
and what happens after any strong login (registration against the client register, the session)."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common.personal_code import normalise_personal_code
from klients_common.rpc import RpcClient

from . import accounts, db, pages
from .connectors.base import LoginFailed, VerifiedIdentity
from .tokens import issue_access_token

bp = Blueprint("login", __name__, url_prefix="/login")
SERVICE_SCOPE = "register:read"


def methods(strong_only: bool) -> list[dict[str, str]]:
    """Return the login methods offered, in order."""
    enabled = current_app.extensions["klients_login_methods"]
    offered = [{"key": "smart_id", "url": url_for("login.smartid_start_page")}] if "smart_id" in enabled else []
    if "eparaksts" in enabled:
        offered.append({"key": "eparaksts", "url": url_for("login.eparaksts_start")})
    if "bank" in enabled:
        offered.append({"key": "bank", "url": url_for("login.bank_choose")})
    if not strong_only and "email" in enabled:
        offered.append({"key": "email", "url": url_for("login.email_login")})
    return offered


@bp.get("")
def choose() -> ResponseReturnValue:
    """Show the login methods."""
    if request.args.get("hint"):
        session["login_hint"] = request.args["hint"]
    strong = request.args.get("strong") == "1"
    return pages.render("choose.html", methods=methods(strong), strong=strong)


# --- after a strong login -------------------------------------------------------------------------------

def service_token() -> str:
    """Return identity's own short-lived token for asking billing about the register."""
    cache = current_app.extensions.setdefault("klients_service_token", {"token": "", "exp": 0.0})
    if cache["exp"] - 30 < time.time():
        settings = current_app.config["SETTINGS"]
        cache["token"] = issue_access_token(
            db(), issuer=settings.issuer, audience=settings.api_audience, subject="service:identity",
            client_id="klients-identity", grants=[], acr="http://eidas.europa.eu/LoA/high", amr=["svc"],
            scope=SERVICE_SCOPE, ttl=120)
        cache["exp"] = time.time() + 120
    return str(cache["token"])


def contracts_of(personal_code: str) -> list[dict[str, Any]]:
    """Ask billing which contracts a personal code holds."""
    client: RpcClient = current_app.extensions["klients_rpc"]
    result: list[dict[str, Any]] = client.call("billing", "contracts_of", personal_code,
                                               context={"authorization": f"Bearer {service_token()}"})
    return result


def finish_strong_login(identity: VerifiedIdentity) -> ResponseReturnValue:
    """Register or find the person, open their login session, and resume the authorization request."""
    try:
        person = accounts.complete_strong_login(db(), identity, contracts_of)
    except accounts.NoContract:
        return pages.render("refused.html", 403)
    login = accounts.start_login_session(db(), person, acr=identity.acr, amr=list(identity.amr),
                                         method=identity.method)
    db().commit()
    return _signed_in(login.sid)


def _signed_in(sid: str) -> ResponseReturnValue:
    pending = session.get("pending_authorize")
    lang = session.get("lang", "lv")
    csrf = session.get("csrf")
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session.update({"sid": sid, "lang": lang, "fresh_login": True})
    if csrf:
        session["csrf"] = csrf
    if pending:
        return redirect(f"{url_for('oidc.authorize')}?{pending}")
    return pages.render("logged_out.html", 200)


def failed(error: LoginFailed, retry_url: str) -> ResponseReturnValue:
    """Show why a login failed and what to do; nothing is signed in."""
    return pages.render("error.html", 401, title_key="failed", message=error.message(pages.current_lang()),
                        retry_url=retry_url if error.retry else None)


# --- Smart-ID -------------------------------------------------------------------------------------------

def smartid() -> Any:
    """Return the app's Smart-ID connector (built on first use from settings)."""
    if "klients_smartid" not in current_app.extensions:
        from .verifier import smartid_client

        current_app.extensions["klients_smartid"] = smartid_client(current_app.config["SETTINGS"])
    return current_app.extensions["klients_smartid"]


@bp.get("/smart-id")
def smartid_start_page() -> ResponseReturnValue:
    """Ask for the personal code (or offer the device link)."""
    return pages.render("smartid_start.html", hint=session.get("login_hint"))


@bp.post("/smart-id")
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
            started = client.start_notification(code)
    except LoginFailed as error:
        return failed(error, url_for("login.smartid_start_page"))
    session["smartid"] = started.to_dict()
    return redirect(url_for("login.smartid_wait"))


@bp.get("/smart-id/wait")
def smartid_wait() -> ResponseReturnValue:
    """Poll the Smart-ID session once; show the code while it runs, finish or fail when it ends."""
    from .connectors.smartid import SmartIdSession

    state = session.get("smartid")
    if not state:
        return redirect(url_for("login.smartid_start_page"))
    client = smartid()
    started = SmartIdSession.from_dict(state)
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
