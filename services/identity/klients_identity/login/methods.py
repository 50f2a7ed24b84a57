"""The login pages: method choice, Smart-ID (notification with the verification code, or device link),
and what happens after any strong login (registration against the client register, the session)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common import constant_time
from klients_common.digests import secret_digest
from klients_common.personal_code import normalise_personal_code

from .. import limits, pages
from ..access import accounts, register
from ..connectors.base import LoginFailed, VerifiedIdentity
from ..db import db
from ..limits import limiter, login_limit
from ..models import utcnow

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


# --- after a strong login -------------------------------------------------------------------------------

def finish_strong_login(identity: VerifiedIdentity) -> ResponseReturnValue:
    """Register or find the person, open their login session, and resume the authorization request.
    While an invitation is being taken up in this browser, the login confirms the invitee instead."""
    if (session.get("invitation") or {}).get("ready"):
        from .invitation import strong_login_for_invitation

        return strong_login_for_invitation(identity)
    try:
        person = accounts.complete_strong_login(db(), identity, register.contracts_of)
    except accounts.NoContract:
        return pages.render("refused.html", 403)
    login = accounts.start_login_session(db(), person, acr=identity.acr, amr=list(identity.amr),
                                         method=identity.method)
    db().commit()
    return signed_in(login.sid)


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
        from ..oauth.endpoints import pending_key

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
        from ..oauth.endpoints import access_denied

        return access_denied(pending)
    return pages.render("error.html", 401, title_key="failed", message=error.message(pages.current_lang()),
                        retry_url=retry_url if error.retry else None)


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
    from ..oauth.endpoints import access_denied

    return access_denied(pending)


# --- Smart-ID -------------------------------------------------------------------------------------------

def smartid() -> Any:
    """Return the app's Smart-ID connector (built on first use from settings)."""
    if "klients_smartid" not in current_app.extensions:
        from .providers import smartid_client

        current_app.extensions["klients_smartid"] = smartid_client(current_app.config["SETTINGS"])
    return current_app.extensions["klients_smartid"]


@bp.get("/smart-id")
def smartid_start_page() -> ResponseReturnValue:
    """Ask for the personal code (or offer the device link)."""
    return pages.render("smartid_start.html", hint=session.get("login_hint"))


@bp.post("/smart-id")
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


@bp.get("/smart-id/wait")
def smartid_wait() -> ResponseReturnValue:
    """Poll the Smart-ID session once; show the code while it runs, finish or fail when it ends."""
    from ..connectors.smartid import SmartIdSession

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


# --- eParaksts ------------------------------------------------------------------------------------------

@bp.get("/eparaksts")
@limiter.limit(login_limit)
def eparaksts_start() -> ResponseReturnValue:
    """Send the browser to eParaksts."""
    from .providers import eparaksts

    state = secrets.token_urlsafe(24)
    session["eparaksts_state"] = state
    return redirect(eparaksts().authorization_url(state=state, ui_locales=pages.current_lang()))


@bp.get("/eparaksts/callback")
def eparaksts_callback() -> ResponseReturnValue:
    """Finish the eParaksts login (the state must be the one this browser was sent with, once)."""
    from .providers import eparaksts

    expected = session.pop("eparaksts_state", "")
    if not expected or not constant_time.equal(expected, request.args.get("state", "")):
        return pages.problem_page(400, "failed", pages.TEXT[pages.current_lang()]["expired"])
    try:
        identity = eparaksts().finish(code=request.args.get("code"), error=request.args.get("error"),
                                      error_description=request.args.get("error_description"))
    except LoginFailed as error:
        return failed(error, url_for("login.eparaksts_start"))
    return finish_strong_login(identity)


# --- internet banks -------------------------------------------------------------------------------------

@bp.get("/bank")
def bank_choose() -> ResponseReturnValue:
    """Show the configured banks."""
    from .providers import bank_configs

    return pages.render("banks.html", banks=list(bank_configs().values()))


@bp.post("/bank/<bank_id>")
@limiter.limit(login_limit)
def bank_start(bank_id: str) -> ResponseReturnValue:
    """Send the browser to the bank with a signed request (an auto-submitting form)."""
    from .providers import bank

    pages.check_csrf()
    link = bank(bank_id)
    if link is None:
        return pages.problem_page(404, "failed", "unknown bank")
    outgoing = link.build_request(return_url=url_for("login.bank_return", bank_id=bank_id, _external=True),
                                  lang=pages.current_lang())
    session["bank_attempt"] = {"bank": bank_id, "nonce": outgoing.nonce}
    return pages.render("autosubmit.html", action=outgoing.url, fields=outgoing.fields)


@bp.route("/bank/<bank_id>/return", methods=["GET", "POST"])
@limiter.limit(login_limit)
def bank_return(bank_id: str) -> ResponseReturnValue:
    """Park the bank's response and continue on a same-site redirect that carries the session cookie."""
    from ..connectors.banklink import response_fields
    from ..models import BankReturn
    from .providers import bank_configs

    if bank_id not in bank_configs():
        return pages.problem_page(404, "failed", "unknown bank")
    key = secrets.token_urlsafe(32)
    db().add(BankReturn(key_hash=secret_digest(key), bank_id=bank_id,
                        fields=response_fields(request.values), expires_at=utcnow() + timedelta(minutes=5)))
    db().commit()
    return redirect(url_for("login.bank_done", bank_id=bank_id, r=key), code=303)


@bp.get("/bank/<bank_id>/done")
def bank_done(bank_id: str) -> ResponseReturnValue:
    """Verify the parked bank response against this browser's attempt; finish the login."""
    from ..models import BankReturn, as_utc
    from .providers import bank

    row = db().get(BankReturn, secret_digest(request.args.get("r", "")))
    attempt = session.pop("bank_attempt", None)
    link = bank(bank_id)
    if row is None or link is None or attempt is None or attempt.get("bank") != bank_id or row.bank_id != bank_id \
            or as_utc(row.expires_at) < utcnow():
        return pages.problem_page(400, "failed", pages.TEXT[pages.current_lang()]["expired"])
    fields = dict(row.fields)
    db().delete(row)
    try:
        identity = link.verify_response(fields, expected_nonce=attempt["nonce"])
    except LoginFailed as error:
        db().commit()
        return failed(error, url_for("login.bank_choose"))
    return finish_strong_login(identity)
