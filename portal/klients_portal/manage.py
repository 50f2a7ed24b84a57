"""Pages that change who may do what, and the person's own details: the contract's users (invite, change,
resend, revoke, the activity list) and contact details. Changes the API wants a stronger or fresher login for
(``403`` with ``insufficient_user_authentication``) send the person through the issuer with the
``acr_values`` / ``max_age`` it named, then carry out the remembered change once (``/resume``)."""

from __future__ import annotations

import time
from typing import Any

import requests
from flask import Response, abort, redirect, request, url_for

from . import i18n
from .api import api, seg
from .app import check_csrf, current, page
from .views import flash, login_required, me, need, pages, take_flash

STEP_UP_SECONDS = 600  # a remembered change is carried out only this soon after it was asked for
LEVELS = ("bills", "bills_readings")


def act(method: str, path: str, body: dict[str, Any] | None, *, back: str, done: str) -> Response | requests.Response:
    """Call the API; when it asks for a stronger login, remember the call and start that login (the answer
    is then a redirect), else return the API's answer."""
    answer = api().call(method, path, json=body)
    if answer.status_code == 403 and "insufficient_user_authentication" in answer.headers.get("WWW-Authenticate",
                                                                                                 ""):
        problem = _problem(answer)
        session = current()
        assert session is not None
        session.set("resume", {"method": method, "path": path, "body": body, "back": back, "done": done,
                               "at": time.time()})
        max_age = problem.get("max_age")
        return redirect(url_for("portal.login", acr_values=problem.get("acr_values") or None,
                                max_age=str(max_age) if isinstance(max_age, int) else None,
                                next=url_for("portal.resume")))
    return answer


def _problem(answer: requests.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _errors_text(answer: requests.Response) -> str:
    problem = _problem(answer)
    fields = [f"{e.get('field')}: {e.get('message') or e.get('code')}" for e in problem.get("errors", [])]
    return "; ".join(fields) or str(problem.get("detail") or problem.get("title") or i18n.text("field_other"))


@pages.get("/resume")
@login_required
def resume() -> Any:
    """After the step-up login: carry out the remembered change once."""
    session = current()
    assert session is not None
    pending = session.pop("resume")
    if not pending or time.time() - float(pending.get("at", 0)) > STEP_UP_SECONDS:
        return redirect(url_for("portal.contracts"))
    answer = api().call(pending["method"], pending["path"], json=pending["body"])
    if answer.status_code == 403:
        return page("error.html", 403, title=i18n.text("step_up_title"), message=i18n.text("step_up_text"))
    if answer.ok:
        flash(pending["done"])
    else:
        flash("change_failed", detail=_errors_text(answer))
    return redirect(pending["back"])


# --- the contract's users -----------------------------------------------------------------------------------

@pages.get("/c/<contract>/users")
@login_required
def users(contract: str) -> Any:
    """Who can access the contract, with what, until when; invite, change, resend, revoke."""
    held = need(contract, "users:manage")
    answer = api().found(f"/contracts/{seg(contract)}/users")
    return page("users.html", contract=contract, rights=held, items=answer.json().get("items", []),
                flash=take_flash(), error=None, form={}, holder=_role(contract) == "owner")


def _role(contract: str) -> str | None:
    for grant in me().get("grants", []):
        if grant.get("contract") == contract:
            return str(grant.get("role"))
    return None


def _back(contract: str) -> str:
    return url_for("portal.users", contract=contract)


def _after(contract: str, result: Response | requests.Response, done: str, form: dict[str, str]) -> Any:
    if isinstance(result, Response):
        return result  # off to the step-up login
    if result.status_code == 404:
        abort(404)
    if result.ok:
        flash(done)
        return redirect(_back(contract))
    held = need(contract, "users:manage")
    listing = api().get(f"/contracts/{seg(contract)}/users")
    return page("users.html", 422 if result.status_code < 500 else 503, contract=contract, rights=held,
                items=listing.json().get("items", []) if listing.ok else [], flash=None,
                error=_errors_text(result), form=form, holder=_role(contract) == "owner")


@pages.post("/c/<contract>/users")
@login_required
def add_user(contract: str) -> Any:
    """Invite an additional user (name, e-mail, level, optional end date)."""
    check_csrf()
    need(contract, "users:manage")
    form = {k: request.form.get(k, "").strip() for k in ("name", "email", "level", "valid_until")}
    body: dict[str, Any] = {"name": form["name"], "email": form["email"], "level": form["level"]}
    if form["valid_until"]:
        body["valid_until"] = form["valid_until"]
    result = act("POST", f"/contracts/{seg(contract)}/users", body, back=_back(contract), done="user_invited")
    return _after(contract, result, "user_invited", form)


@pages.post("/c/<contract>/mandates")
@login_required
def add_mandate(contract: str) -> Any:
    """The holder grants an authorised person a mandate online (a strong login at most 15 minutes old: the
    API asks for it and the step-up follows)."""
    check_csrf()
    need(contract, "users:manage")
    form = {k: request.form.get(k, "").strip() for k in ("name", "email", "personal_code", "valid_until")}
    body = {"role": "delegate", **form}
    result = act("POST", f"/contracts/{seg(contract)}/users", body, back=_back(contract), done="mandate_granted")
    return _after(contract, result, "mandate_granted", {})


@pages.post("/c/<contract>/users/<grant>")
@login_required
def change_user(contract: str, grant: str) -> Any:
    """Change, resend or revoke (the button pressed says which)."""
    check_csrf()
    need(contract, "users:manage")
    path = f"/contracts/{seg(contract)}/users/{seg(grant)}"
    action = request.form.get("action")
    if action == "revoke":
        result = act("DELETE", path, None, back=_back(contract), done="user_revoked")
        return _after(contract, result, "user_revoked", {})
    if action == "resend":
        result = act("POST", f"{path}/resend", None, back=_back(contract), done="user_resent")
        return _after(contract, result, "user_resent", {})
    if action == "change":
        body: dict[str, Any] = {}
        if request.form.get("level") in LEVELS:
            body["level"] = request.form["level"]
        if "valid_until" in request.form:
            body["valid_until"] = request.form["valid_until"].strip() or None
        result = act("PATCH", path, body, back=_back(contract), done="user_changed")
        return _after(contract, result, "user_changed", {})
    abort(400)


@pages.get("/c/<contract>/activity")
@login_required
def activity(contract: str) -> Any:
    """What was done on the contract, by whom, newest first."""
    held = need(contract, "users:manage")
    answer = api().found(f"/contracts/{seg(contract)}/activity")
    return page("activity.html", contract=contract, rights=held, events=answer.json().get("events", [])[:200])


# --- contact details ----------------------------------------------------------------------------------------

CONTACT_FIELDS = ("email", "phone", "address", "language")


@pages.get("/contact")
@login_required
def contact() -> Any:
    """The person's e-mail (and one waiting for its link), phone, address, language and reminders."""
    answer = api().get("/me/contact")
    return page("contact.html", contact=answer.json() if answer.ok else {}, flash=take_flash(), error=None)


@pages.post("/contact")
@login_required
def save_contact() -> Any:
    """Change what was changed; a new e-mail or phone may need a stronger login first."""
    check_csrf()
    now = api().get("/me/contact")
    known = now.json() if now.ok else {}
    changes: dict[str, Any] = {}
    for name in CONTACT_FIELDS:
        value = request.form.get(name, "").strip()
        if value and value != (known.get(name) or ""):
            changes[name] = value
    reminders = request.form.get("reminders") == "on"
    if reminders != bool(known.get("reminders")):
        changes["reminders"] = reminders
    if not changes:
        return redirect(url_for("portal.contact"))
    if "language" in changes:
        session = current()
        assert session is not None
        session.set("lang", i18n.pick(changes["language"]))
    done = "contact_email_sent" if "email" in changes else "contact_saved"
    result = act("PATCH", "/me/contact", changes, back=url_for("portal.contact"), done=done)
    if isinstance(result, Response):
        return result
    if result.ok:
        flash(done)
        return redirect(url_for("portal.contact"))
    return page("contact.html", 422, contact={**known, **changes}, flash=None, error=_errors_text(result))
