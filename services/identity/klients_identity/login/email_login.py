"""The e-mail method (docs/identity.md, "The login methods"): registration proven by the e-mail address the
client register holds for the contract, a password (argon2id), login at assurance low, and password reset by link.

Answers never tell whether an address or contract exists (no user enumeration): registration and reset
always say "if the details are right, a link is on its way", do the same work (the register is asked
even when the address already has a login) and take the same time (``EMAIL_FORM_SECONDS``). Per target
address, failed logins and link mails are limited (``limits``), counted whether or not an account exists.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import Blueprint, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import IntegrityError

from klients_common import constant_time
from klients_common.assurance import LOA_LOW
from klients_common.digests import secret_digest
from klients_common.outbox import enqueue

from .. import limits, pages
from ..access import accounts, contacts
from ..access.register import email_on_file as register_email
from ..db import db
from ..limits import limiter, login_limit
from ..models import EmailToken, Grant, PasswordLogin, Person, as_utc, outbox, utcnow
from . import passwords
from .signin import signed_in

bp = Blueprint("email", __name__, url_prefix="/login/email")
LINK_TTL = {"register": timedelta(hours=24), "reset": timedelta(hours=1)}
ALREADY_REGISTERED = {
    "lv": "Šai e-pasta adresei jau ir konts, tāpēc šī reģistrācijas saite vairs nav vajadzīga. Pieslēdzieties ar "
          "e-pastu un paroli vai, ja paroli neatceraties, pieprasiet paroles maiņu.",
    "en": "This e-mail address already has an account, so this registration link is no longer needed. Log in "
          "with your e-mail and password or, if you do not remember the password, ask for a reset.",
}
ADDRESS_TAKEN = {
    "lv": "Ar šo e-pasta adresi jau pieslēdzas cita persona, tāpēc to nevar izmantot. Jūsu kontaktinformācija "
          "nav mainīta. Norādiet citu adresi vai sazinieties ar klientu apkalpošanu.",
    "en": "Another person already logs in with this e-mail address, so it cannot be used. Your contact details "
          "have not changed. Give another address or contact customer service.",
}


def _equal_time() -> float:
    return float(current_app.config["SETTINGS"].email_form_seconds)


def _normal(email: str) -> str | None:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


def _send_link(purpose: str, email: str, **fields: Any) -> None:
    token = secrets.token_urlsafe(32)  # 256 bits
    expires = utcnow() + LINK_TTL[purpose]
    db().add(EmailToken(token_hash=secret_digest(token), purpose=purpose, email=email, expires_at=expires, **fields))
    lang = pages.current_lang()
    link = url_for("email.set_password_page", purpose=purpose, token=token, lang=lang, _external=True)
    event = "email_verification_requested" if purpose == "register" else "password_reset_requested"
    enqueue(db(), outbox, event, {"to": email, "link": link, "expires_at": expires.isoformat(), "lang": lang})


@bp.get("")
def login_page() -> ResponseReturnValue:
    """The e-mail + password form."""
    return pages.render("email_login.html")


@bp.post("")
@limiter.limit(login_limit)
def login() -> ResponseReturnValue:
    """Log in with e-mail and password (assurance low)."""
    pages.check_csrf()
    email = _normal(request.form.get("email", "")) or ""
    if email and limits.account_spent("login", email):  # counted for any address: no enumeration
        return limits.too_many_page()
    row = db().get(PasswordLogin, email) if email else None
    if not passwords.verify(row.password_hash if row else None, request.form.get("password", "")) or row is None:
        if email:
            limits.account_hit("login", email)
        return pages.render("email_login.html", 401, error=pages.TEXT[pages.current_lang()]["bad_credentials"])
    person = db().get(Person, row.person_id)
    login_session = accounts.start_login_session(db(), person, acr=LOA_LOW, amr=["pwd"], method="email")
    db().commit()
    return signed_in(login_session.sid)


@bp.get("/register")
def register_page() -> ResponseReturnValue:
    """Ask for the e-mail address and the contract number."""
    return pages.render("email_register.html")


@bp.post("/register")
@limiter.limit(login_limit)
@constant_time.taking_at_least(_equal_time)
def register() -> ResponseReturnValue:
    """Send a registration link, but only to the address the register holds for that contract (and only a
    few per address and hour)."""
    pages.check_csrf()
    email = _normal(request.form.get("email", ""))
    contract = request.form.get("contract", "").strip().upper()[:32]
    if email and contract:
        has_login = db().get(PasswordLogin, email) is not None
        on_file = register_email(contract)  # asked whatever the address: the same work for known and unknown
        within_limit = limits.account_hit("mail", email)
        if on_file and _normal(on_file) == email and not has_login and within_limit:
            _send_link("register", email, contract=contract)
            db().commit()
    return pages.render("email_sent.html")


@bp.get("/contact/<token>")
def confirm_contact_email(token: str) -> ResponseReturnValue:
    """Open the link sent to a new contact address: from now on it is the person's e-mail."""
    try:
        person = contacts.confirm_email(db(), token)
    except contacts.AddressTaken:
        return pages.problem_page(409, "link_invalid", ADDRESS_TAKEN[pages.current_lang()])
    if person is None:
        return pages.problem_page(400, "link_invalid", pages.TEXT[pages.current_lang()]["link_invalid_text"])
    return pages.render("email_confirmed.html")


@bp.get("/forgot")
def forgot_page() -> ResponseReturnValue:
    """Ask for the e-mail address to reset the password of."""
    return pages.render("email_forgot.html")


@bp.post("/forgot")
@limiter.limit(login_limit)
@constant_time.taking_at_least(_equal_time)
def forgot() -> ResponseReturnValue:
    """Send a reset link if the address has a login (a few per address and hour)."""
    pages.check_csrf()
    email = _normal(request.form.get("email", ""))
    if email and limits.account_hit("mail", email):
        row = db().get(PasswordLogin, email)
        if row is not None:
            _send_link("reset", row.email, person_id=row.person_id)
            db().commit()
    return pages.render("email_sent.html")


def _live_token(purpose: str, token: str) -> EmailToken | None:
    row = db().get(EmailToken, secret_digest(token))
    if row is None or row.purpose != purpose or row.used_at is not None or as_utc(row.expires_at) < utcnow():
        return None
    return row


@bp.get("/<purpose>/<token>")
def set_password_page(purpose: str, token: str) -> ResponseReturnValue:
    """Open a link: keep it in the session (off the URL and out of later logs) and ask for a password."""
    if purpose not in LINK_TTL or _live_token(purpose, token) is None:
        return pages.problem_page(400, "link_invalid", pages.TEXT[pages.current_lang()]["link_invalid_text"])
    session["email_link"] = {"purpose": purpose, "token": token}
    return redirect(url_for("email.password_page"))


@bp.get("/password")
def password_page() -> ResponseReturnValue:
    """The choose-a-password form for the link opened in this browser."""
    if not session.get("email_link"):
        return pages.problem_page(400, "link_invalid", pages.TEXT[pages.current_lang()]["link_invalid_text"])
    return pages.render("email_password.html")


@bp.post("/password")
@limiter.limit(login_limit)
def set_password() -> ResponseReturnValue:
    """Set the password; a registration creates the person with an owner grant on the contract."""
    pages.check_csrf()
    link = session.get("email_link") or {}
    purpose, token = link.get("purpose", ""), link.get("token", "")
    row = _live_token(purpose, token) if purpose in LINK_TTL else None
    if row is None:
        return pages.problem_page(400, "link_invalid", pages.TEXT[pages.current_lang()]["link_invalid_text"])
    password = request.form.get("password", "")
    errors = passwords.new_password_errors(row.email)
    if errors:
        return pages.render("email_password.html", 422, errors=errors)
    if purpose == "register":
        if db().get(PasswordLogin, row.email) is not None:  # an earlier link for this address was used
            return _already_registered()
        row.used_at = utcnow()
        person = Person(id=str(uuid.uuid4()), given_name="", family_name="", email=row.email,
                        language=pages.current_lang())
        db().add(person)
        db().flush()
        db().add(PasswordLogin(email=row.email, person_id=person.id, password_hash=passwords.hash_password(password)))
        try:
            db().flush()
        except IntegrityError:  # two links for the same address used at the same moment
            db().rollback()
            return _already_registered()
        db().add(Grant(id=str(uuid.uuid4()), person_id=person.id, contract=row.contract, role="owner",
                       status="active", created_by="email-registration"))
        accounts.audit(db(), actor=person.id, action="person_registered", subject=person.id, contract=row.contract,
                       method="email")
    else:
        # Exactly the login of the address the link was sent to (a person may hold several).
        login_row = db().get(PasswordLogin, row.email)
        if login_row is None:  # the login went away since the link was sent
            return pages.problem_page(400, "link_invalid", pages.TEXT[pages.current_lang()]["link_invalid_text"])
        row.used_at = utcnow()
        login_row.password_hash = passwords.hash_password(password)
        person = db().get(Person, login_row.person_id)
        accounts.end_sessions(db(), person.id)
        accounts.audit(db(), actor=person.id, action="password_reset", subject=person.id)
    login_session = accounts.start_login_session(db(), person, acr=LOA_LOW, amr=["pwd"], method="email")
    db().commit()
    return signed_in(login_session.sid)


def _already_registered() -> ResponseReturnValue:
    session.pop("email_link", None)
    return pages.problem_page(409, "link_invalid", ALREADY_REGISTERED[pages.current_lang()])
