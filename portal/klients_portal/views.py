"""The portal's pages. Every page that shows personal data needs a login (``login_required``); every form
post checks the CSRF token; every call to the API goes through ``api()`` with the session's token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, current_app, g, redirect, request, url_for
from werkzeug.exceptions import TooManyRequests

from . import chart, i18n
from .api import SessionExpired, api, seg
from .app import check_csrf, current, page, store
from .oidc import IssuerError, OidcClient
from .settings import Settings
from .store import BrowserSession

pages = Blueprint("portal", __name__)
PAGE_SIZE = 20
MAX_ATTEMPTS = 10  # payment attempts remembered per session


def oidc() -> OidcClient:
    """The app's OIDC client."""
    return current_app.extensions["klients_portal_oidc"]  # type: ignore[no-any-return]


def settings() -> Settings:
    """The portal's settings."""
    return current_app.config["PORTAL"]  # type: ignore[no-any-return]


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def safe_next(target: str | None, default: str = "/") -> str:
    """Return ``target`` when it is a path on this portal (``/...``), else ``default``: no scheme, no host, no
    ``//`` or backslash tricks, no control characters."""
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith(("//", "/\\")):
        return default
    if any(ord(c) < 0x21 or c == "\\" for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send a visitor without a login to log in (and back here after); an ended session gets its page."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = g.get("portal_session")
        if session is None or not session.logged_in:
            if g.get("session_expired"):
                raise SessionExpired
            return redirect(url_for("portal.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def me() -> dict[str, Any]:
    """The person's grants (``GET /me``), asked once per access token: the answer is kept in the session
    under the token's hash until the token is refreshed. (A grant revoked meanwhile still shows here until
    then, but every contract call the page makes is refused by the API: the page is "not found".)"""
    if "portal_me" not in g:
        session = g.portal_session
        key = hashlib.sha256(api().access_token(session).encode()).hexdigest()[:32]
        kept = session.data.get("me")
        if isinstance(kept, dict) and kept.get("token") == key:
            g.portal_me = kept["body"]
        else:
            answer = api().get("/me")
            g.portal_me = answer.json() if answer.ok else {"grants": []}
            if answer.ok:
                session.set("me", {"token": key, "body": g.portal_me})
    return g.portal_me  # type: ignore[no-any-return]


def rights(contract: str) -> set[str]:
    """The person's rights on ``contract`` (none when they have no grant)."""
    for grant in me().get("grants", []):
        if grant.get("contract") == contract:
            return set(grant.get("rights", []))
    return set()


def need(contract: str, right: str) -> set[str]:
    """The rights on ``contract``; 404 without a grant, 403 page without ``right``."""
    held = rights(contract)
    if not held:
        abort(404)
    if right not in held:
        return abort(page("error.html", 403, title=i18n.text("bad_request_title"), message=i18n.text(
            "forbidden_text")))
    return held


def flash(key: str, **values: Any) -> None:
    """A one-time message for the next page."""
    session = current()
    assert session is not None
    session.set("flash", {"key": key, "values": values})


def take_flash() -> str | None:
    """The one-time message, if any (shown once)."""
    session = g.get("portal_session")
    if session is None or "flash" not in session.data:
        return None
    message = session.pop("flash")
    return i18n.text(message["key"], **message.get("values", {}))


# --- landing, language, login, logout -------------------------------------------------------------------------

@pages.get("/healthz")
def healthz() -> Response:
    """Liveness: the process runs."""
    return Response("ok", mimetype="text/plain")


@pages.get("/")
def landing() -> Any:
    """The start page; a logged-in person goes on to their contracts."""
    session = g.get("portal_session")
    if session is not None and session.logged_in:
        return redirect(url_for("portal.contracts"))
    return page("landing.html", signed_out="state" in request.args or request.args.get("bye") == "1")


@pages.get("/lang/<code>")
def switch_language(code: str) -> Any:
    """Switch the language and go back to the page the switch was on."""
    session = current()
    assert session is not None
    session.set("lang", i18n.pick(code))
    return redirect(safe_next(request.args.get("next")))


@pages.get("/login")
def login() -> Any:
    """Start the code flow at the issuer (rate-limited per client address)."""
    limiter, limit = current_app.extensions["klients_portal_limiter"]
    if not limiter.hit(limit, "login", request.remote_addr or "-"):
        raise TooManyRequests(retry_after=60)  # type: ignore[call-arg]
    session = current()
    assert session is not None
    started = oidc().login_request(lang=i18n.current(), acr_values=request.args.get("acr_values") or None,
                                   max_age=request.args.get("max_age") or None)
    logins = dict(session.data.get("logins", {}))
    if len(logins) >= 5:  # a few tabs may start logins at once; the oldest are forgotten
        logins = dict(list(logins.items())[-4:])
    logins[started.state] = {"verifier": started.verifier, "nonce": started.nonce,
                             "next": safe_next(request.args.get("next"))}
    session.set("logins", logins)
    return redirect(started.url)


@pages.get("/callback")
def callback() -> Any:
    """The end of the code flow: check state and issuer, exchange the code, start a new session."""
    args = request.args
    session = g.get("portal_session")
    pending = (session.data.get("logins", {}) if session is not None else {}).get(args.get("state", ""))
    error = args.get("error")
    if pending is None:
        return page("login_error.html", 400, title=i18n.text("login_failed_title"),
                    message=i18n.text("login_failed_text"), next="/")
    if session is not None:
        logins = dict(session.data["logins"])
        logins.pop(args["state"], None)
        session.set("logins", logins)
    if error:
        key = "login_required" if error in ("login_required", "interaction_required") else \
            "denied" if error == "access_denied" else "login_failed"
        return page("login_error.html", 400 if key == "login_failed" else 200, title=i18n.text(f"{key}_title"),
                    message=i18n.text(f"{key}_text"), next=pending["next"])
    if args.get("iss") is not None and args.get("iss") != oidc().issuer:  # RFC 9207: mix-up protection
        return page("login_error.html", 400, title=i18n.text("login_failed_title"),
                    message=i18n.text("login_failed_text"), next=pending["next"])
    code = args.get("code")
    if not code:
        return page("login_error.html", 400, title=i18n.text("login_failed_title"),
                    message=i18n.text("login_failed_text"), next=pending["next"])
    try:
        tokens = oidc().exchange(code, pending["verifier"])
    except IssuerError:
        return page("login_error.html", 400, title=i18n.text("login_failed_title"),
                    message=i18n.text("login_failed_text"), next=pending["next"])
    assert session is not None
    keep = {k: v for k, v in session.data.items() if k in ("lang", "logins", "pay_attempts", "payments",
                                                           "resume")}
    store().delete(session)  # a new id at login: nothing known before the login can ride on it
    fresh = store().create(keep)
    store().save(fresh)
    store().set_tokens(fresh, tokens)
    g.portal_session = fresh
    contact = api().get("/me/contact", session=fresh)
    if contact.ok:
        body = contact.json()
        fresh.set("name", f"{body.get('given_name') or ''} {body.get('family_name') or ''}".strip())
        fresh.set("lang", i18n.pick(body.get("language")))
    return redirect(pending["next"] if pending["next"] != "/" else url_for("portal.contracts"))


@pages.post("/logout")
def logout() -> Any:
    """Log out: revoke the refresh token, forget the session, and end the login at the issuer too."""
    check_csrf()
    session = g.get("portal_session")
    target = url_for("portal.landing", bye="1")
    if session is not None:
        tokens = session.tokens
        if tokens.refresh_token:
            oidc().revoke(tokens.refresh_token)
        try:
            target = oidc().logout_url(settings().post_logout_uri) or target
        except IssuerError:
            pass
        store().delete(session)
        g.portal_session = None
    return redirect(target)


# --- contracts and the overview -------------------------------------------------------------------------------

@pages.get("/contracts")
@login_required
def contracts() -> Any:
    """The person's contracts: one goes straight to its overview; many get search and paging."""
    items = api().get("/contracts").json().get("items", [])
    query = (request.args.get("q") or "").strip()[:100]
    if len(items) == 1 and not query:
        return redirect(url_for("portal.overview", contract=items[0]["number"]))
    if query:
        needle = query.casefold()
        items = [c for c in items if any(needle in str(c.get(f) or "").casefold()
                                         for f in ("number", "supply_address", "holder_name"))]
    pages_total = max(1, -(-len(items) // PAGE_SIZE))
    try:
        number = min(max(1, int(request.args.get("page", "1"))), pages_total)
    except ValueError:
        number = 1
    shown = items[(number - 1) * PAGE_SIZE:number * PAGE_SIZE]
    return page("contracts.html", items=shown, q=query, page=number, pages=pages_total,
                flash=take_flash())


@pages.get("/c/<contract>")
@login_required
def overview(contract: str) -> Any:
    """A contract's overview: what to pay, overdue, credit, next due date, last reading, the reading window,
    quick actions. One API call carries every panel and the person's rights on the contract
    (``GET /contracts/{contract}/overview``)."""
    answer = api().found(f"/contracts/{seg(contract)}/overview")
    if not answer.ok:
        abort(404)
    body = answer.json()
    held = set(body.get("rights", []))
    meters = [m for m in body.get("meters", []) if not m.get("removed_on")]
    return page("overview.html", contract=contract, info=body["contract"], balance=body.get("balance"),
                next_due=(body.get("balance") or {}).get("next_due_date"),
                last_reading=meters[0].get("last_reading") if meters else None,
                window=body.get("reading_window"), rights=held, flash=take_flash())


# --- bills ------------------------------------------------------------------------------------------------------

@pages.get("/c/<contract>/bills")
@login_required
def bills(contract: str) -> Any:
    """The invoice list."""
    held = need(contract, "bills:read")
    answer = api().found(f"/contracts/{seg(contract)}/invoices")
    return page("bills.html", contract=contract, items=answer.json().get("items", []), rights=held)


@pages.get("/c/<contract>/bills/<number>")
@login_required
def invoice(contract: str, number: str) -> Any:
    """One invoice with its lines."""
    held = need(contract, "bills:read")
    answer = api().found(f"/contracts/{seg(contract)}/invoices/{seg(number)}")
    return page("invoice.html", contract=contract, invoice=answer.json(), rights=held)


@pages.get("/c/<contract>/bills/<number>/pdf")
@login_required
def invoice_pdf(contract: str, number: str) -> Any:
    """The invoice as PDF (``lang=lv|en``), as a download."""
    need(contract, "bills:read")
    lang = i18n.pick(request.args.get("lang"))
    answer = api().found(f"/contracts/{seg(contract)}/invoices/{seg(number)}/pdf", params={"lang": lang})
    if not answer.ok or answer.headers.get("Content-Type", "").split(";")[0] != "application/pdf":
        abort(404)
    safe = "".join(ch for ch in number if ch.isalnum() or ch in "-_")
    return Response(answer.content, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="invoice-{safe}-{lang}.pdf"'})


# --- paying -----------------------------------------------------------------------------------------------------

def _parse_amount(raw: str) -> str | None:
    """An amount typed by a person (``12,5`` or ``12.50``) as the API wants it (``12.50``), else None."""
    cleaned = raw.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".").removesuffix("€")
    try:
        amount = Decimal(cleaned)
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0 or amount > 10000 or amount != amount.quantize(Decimal("0.01"),
                                                                                            ROUND_DOWN):
        return None
    return f"{amount:.2f}"


def _new_attempt(session: BrowserSession, contract: str) -> str:
    """A payment attempt: its Idempotency-Key lives in the session, the form carries only its id."""
    attempts = dict(session.data.get("pay_attempts", {}))
    if len(attempts) >= MAX_ATTEMPTS:
        attempts = dict(list(attempts.items())[-(MAX_ATTEMPTS - 1):])
    attempt = secrets.token_urlsafe(16)
    attempts[attempt] = {"contract": contract, "key": f"portal-{uuid.uuid4()}"}
    session.set("pay_attempts", attempts)
    return attempt


@pages.get("/c/<contract>/pay")
@login_required
def pay_form(contract: str) -> Any:
    """Choose the amount: the amount due or another."""
    need(contract, "bills:pay")
    balance = api().get(f"/contracts/{seg(contract)}/balance")
    if balance.status_code == 404:
        abort(404)
    session = current()
    assert session is not None
    return page("pay.html", contract=contract, balance=balance.json() if balance.ok else None,
                attempt=_new_attempt(session, contract), error=None, other="")


@pages.post("/c/<contract>/pay")
@login_required
def pay(contract: str) -> Any:
    """Create the payment (the attempt's Idempotency-Key: a double click or a resend pays once) and send the
    payer to the provider."""
    check_csrf()
    need(contract, "bills:pay")
    session = current()
    assert session is not None
    attempt = session.data.get("pay_attempts", {}).get(request.form.get("attempt", ""))
    if attempt is None or attempt["contract"] != contract:
        abort(400)
    body: dict[str, str] = {}
    other = request.form.get("other", "")
    if request.form.get("choice") == "other":
        amount = _parse_amount(other)
        if amount is None:
            return _pay_again(contract, request.form["attempt"], "pay_bad_amount", other)
        body["amount"] = amount
    answer = api().call("POST", f"/contracts/{seg(contract)}/payments", json=body,
                        headers={"Idempotency-Key": attempt["key"]})
    if answer.status_code == 201:
        payment = answer.json()
        target = payment.get("redirect_url", "")
        if origin(target) is None:
            abort(502)
        payments = dict(session.data.get("payments", {}))
        payments[payment["id"]] = contract
        session.set("payments", dict(list(payments.items())[-MAX_ATTEMPTS:]))
        return redirect(target)
    if answer.status_code == 404:
        abort(404)
    if answer.status_code == 409:
        return _pay_again(contract, request.form["attempt"], "pay_in_progress", other, 409)
    problem = answer.json() if answer.headers.get("Content-Type", "").endswith("json") else {}
    key = "pay_nothing_due" if problem.get("code") == "nothing_due" else "pay_bad_amount"
    return _pay_again(contract, _new_attempt(session, contract), key, other)


def _pay_again(contract: str, attempt: str, key: str, other: str, status: int = 422) -> Response:
    balance = api().get(f"/contracts/{seg(contract)}/balance")
    return page("pay.html", status, contract=contract, balance=balance.json() if balance.ok else None,
                attempt=attempt, error=i18n.text(key), other=other)


@pages.get("/payment-done")
@login_required
def payment_done() -> Any:
    """Where the provider sends the payer back: pending (this page refreshes itself) → received; or the
    provider's cancel."""
    session = current()
    assert session is not None
    payment_id = request.args.get("payment", "")
    contract = session.data.get("payments", {}).get(payment_id)
    if contract is None:
        abort(404)
    answer = api().found(f"/contracts/{seg(contract)}/payments/{seg(payment_id)}")
    payment = answer.json()
    status = payment.get("status")
    if status == "pending" and request.args.get("status") == "cancelled":
        status = "cancelled"
    return page("payment_done.html", contract=contract, payment=payment, state=status)


# --- meter readings ---------------------------------------------------------------------------------------------

def _meters_and_history(contract: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The contract's meters, each with its history, and the reading window (from the overview)."""
    c = seg(contract)
    overview = api().found(f"/contracts/{c}/overview")
    body = overview.json() if overview.ok else {}
    found = list(body.get("meters", []))
    paths = {m["serial_number"]: f"/contracts/{c}/meters/{seg(m['serial_number'])}/readings" for m in found}
    histories = api().many(paths) if paths else {}
    for meter in found:
        answer = histories.get(meter["serial_number"])
        meter["readings"] = answer.json().get("items", [])[:24] if answer is not None and answer.ok else []
    return found, body.get("reading_window")


@pages.get("/c/<contract>/readings")
@login_required
def readings(contract: str) -> Any:
    """Meters, the reading form (with ``readings:submit``) and each meter's history with who submitted."""
    held = need(contract, "meters:read")
    meters, window = _meters_and_history(contract)
    return page("readings.html", contract=contract, meters=meters, window=window, rights=held, flash=take_flash(),
                answer=None)


@pages.post("/c/<contract>/readings")
@login_required
def submit_reading(contract: str) -> Any:
    """Submit a reading and show the answer in words (roll-over and unusual values asked to be confirmed)."""
    check_csrf()
    held = need(contract, "readings:submit")
    meter = request.form.get("meter", "")
    value = request.form.get("value", "").strip()
    body: dict[str, Any] = {"value": value}
    for flag in ("confirm_rollover", "confirm_unusual"):
        if request.form.get(flag) == "true":
            body[flag] = True
    answer = api().call("POST", f"/contracts/{seg(contract)}/meters/{seg(meter)}/readings", json=body)
    if answer.status_code == 201:
        stored = answer.json()
        flash("reading_flagged" if stored.get("flagged") else "reading_accepted", value=stored.get("value"))
        return redirect(url_for("portal.readings", contract=contract))
    if answer.status_code == 404:
        abort(404)
    problem = answer.json() if answer.headers.get("Content-Type", "").endswith("json") else {}
    code = problem.get("code")
    if code is None and problem.get("errors"):
        field_code = problem["errors"][0].get("code", "")
        message = i18n.text(f"field_{field_code}" if f"field_{field_code}" in i18n.TEXT else "field_other")
    elif code == "outside_window":
        days = i18n.window_days(problem) or {"opens": "", "closes": ""}
        message = i18n.text("outside_window", **days)
    elif code == "lower_than_previous":
        message = i18n.text("lower_than_previous", previous=problem.get("previous", ""))
    elif code in ("confirmation_required", "meter_removed"):
        message = i18n.text(code)
    else:
        message = i18n.text("field_other")
    result = {"meter": meter, "value": value, "code": code, "message": message}
    meters, window = _meters_and_history(contract)
    return page("readings.html", 422, contract=contract, meters=meters, window=window, rights=held, flash=None,
                answer=result)


# --- consumption ------------------------------------------------------------------------------------------------

SPANS = {"month": 12, "quarter": 8, "year": 5}


def _period(group_by: str) -> tuple[date, date]:
    today = date.today()
    if group_by == "year":
        return date(today.year - SPANS["year"] + 1, 1, 1), date(today.year + 1, 1, 1)
    if group_by == "quarter":
        start_q = (today.month - 1) // 3 * 3 + 1
        end = date(today.year + (start_q + 3 > 12), (start_q + 2) % 12 + 1, 1)
        year, month = end.year - 2, end.month
        return date(year, month, 1), end
    end = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return date(end.year - 1, end.month, 1), end


def _group_by() -> str:
    group_by = request.args.get("group_by", "month")
    return group_by if group_by in SPANS else "month"


@pages.get("/c/<contract>/consumption")
@login_required
def consumption(contract: str) -> Any:
    """Consumption by month, quarter or year beside the year before, as a chart and a table."""
    held = need(contract, "consumption:read")
    group_by = _group_by()
    start, end = _period(group_by)
    answer = api().get(f"/contracts/{seg(contract)}/consumption", params={
        "period_from": start.isoformat(), "period_to": end.isoformat(), "group_by": group_by})
    if answer.status_code == 404:
        abort(404)
    items = answer.json().get("items", []) if answer.ok else []
    return page("consumption.html", contract=contract, items=items, group_by=group_by, rights=held,
                svg=chart.bars(items, group_by))


@pages.get("/c/<contract>/consumption.csv")
@login_required
def consumption_csv(contract: str) -> Any:
    """The same figures as a CSV file."""
    need(contract, "consumption:read")
    group_by = _group_by()
    start, end = _period(group_by)
    answer = api().get(f"/contracts/{seg(contract)}/consumption", params={
        "period_from": start.isoformat(), "period_to": end.isoformat(), "group_by": group_by, "format": "csv"})
    if not answer.ok:
        abort(404)
    return Response(answer.content, mimetype="text/csv", headers={
        "Content-Disposition": answer.headers.get("Content-Disposition", "attachment; filename=consumption.csv")})
