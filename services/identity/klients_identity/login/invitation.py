"""The invitation pages: taking up an additional user's or an authorised person's access (docs/access.md, "The rules").

The invitee opens the link (kept in the server-side session from then on, off the URL), sees what they
are invited to, chooses a password (additional users: it becomes their e-mail + password login),
confirms who they are with a strong method (bank, eParaksts, Smart-ID; the personal code must match
when the inviter gave one), fills in the contact form, and the grant becomes active.

Nothing is written until the last step, except the person record a matching strong login creates;
a wrong person, a used, cancelled or expired link each get a page that says what to do next.
"""

from __future__ import annotations

from flask import Blueprint, redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common.riga import RIGA

from .. import pages
from ..access import accounts, register
from ..access import grants as access
from ..access.contacts import e164, postal_address
from ..connectors.base import VerifiedIdentity
from ..db import db
from ..limits import limiter, login_limit
from ..models import Grant, Invitation, Person, as_utc
from . import passwords
from .signin import signed_in

bp = Blueprint("invite", __name__, url_prefix="/invite")


def _invalid(reason: str) -> ResponseReturnValue:
    texts = pages.TEXT[pages.current_lang()]
    session.pop("invitation", None)
    status = 403 if reason in ("wrong_person", "email_taken") else 409 if reason == "already" else 400
    return pages.problem_page(status, "invitation", texts[f"invite_{reason}"])


@bp.errorhandler(access.InvitationInvalid)
def _invitation_invalid(exc: access.InvitationInvalid) -> ResponseReturnValue:
    db().rollback()
    return _invalid(exc.reason)


def _current() -> tuple[Invitation, Grant]:
    """Return (invitation, grant) of the link opened in this browser; raise InvitationInvalid (the page
    explaining why is the blueprint's error handler)."""
    state = session.get("invitation") or {}
    return access.open_invitation(db(), state.get("token", ""))


@bp.get("/<token>")
@limiter.limit(login_limit)
def open_link(token: str) -> ResponseReturnValue:
    """Open an invitation link: remember it in this browser's session and show it."""
    try:
        access.open_invitation(db(), token)
    except access.InvitationInvalid as exc:
        return _invalid(exc.reason)
    pages.current_lang()  # the link carries the e-mail's language (``?lang=``): the pages that follow use it
    session["invitation"] = {"token": token}
    return redirect(url_for("invite.show"))


@bp.get("")
def show() -> ResponseReturnValue:
    """What the person is invited to, and the password form (additional users)."""
    invitation, grant = _current()
    return pages.render("invite.html", grant=grant, email=invitation.email, deadline=as_utc(invitation.expires_at)
                        .astimezone(RIGA).strftime("%d.%m.%Y %H:%M"))


@bp.post("")
@limiter.limit(login_limit)
def choose_password() -> ResponseReturnValue:
    """Keep the chosen password (hashed) for the end of the flow and send the person to a strong login."""
    pages.check_csrf()
    invitation, grant = _current()
    state = dict(session["invitation"])
    if grant.role == "subuser":
        errors = passwords.new_password_errors(invitation.email)
        if errors:
            return pages.render("invite.html", 422, grant=grant, email=invitation.email,
                                deadline=as_utc(invitation.expires_at).astimezone(RIGA)
                                .strftime("%d.%m.%Y %H:%M"), errors=errors)
        state["password_hash"] = passwords.hash_password(request.form.get("password", ""))
    state["ready"] = True  # the next strong login in this browser is the invitee's
    session["invitation"] = state
    return redirect(url_for("login.choose", strong=1))


def strong_login_for_invitation(identity: VerifiedIdentity) -> ResponseReturnValue:
    """Called after any strong login while an invitation is open: check the person, then ask for contacts."""
    _invitation, grant = _current()
    if grant.expected_personal_code and grant.expected_personal_code != identity.personal_code:
        accounts.audit(db(), actor=None, action="invitation_wrong_person", contract=grant.contract, grant=grant.id)
        db().commit()
        return _invalid("wrong_person")
    person = accounts.complete_strong_login(db(), identity, register.contracts_of, invited=True)
    db().commit()
    session["invitation"] = {**session["invitation"], "person_id": person.id, "acr": identity.acr,
                             "amr": list(identity.amr), "method": identity.method}
    return redirect(url_for("invite.contact_page"))


def _contact_values(person: Person, invitation: Invitation) -> dict[str, str]:
    return {"email": person.email or invitation.email, "phone": person.phone or "", "address": person.address or ""}


@bp.get("/contact")
def contact_page() -> ResponseReturnValue:
    """The contact form, after the strong login."""
    invitation, _grant = _current()
    person = db().get(Person, session["invitation"].get("person_id", ""))
    if person is None:
        return redirect(url_for("invite.show"))
    return pages.render("invite_contact.html", values=_contact_values(person, invitation), errors={})


@bp.post("/contact")
@limiter.limit(login_limit)
def finish() -> ResponseReturnValue:
    """Save the contact details, activate the grant and sign the person in."""
    pages.check_csrf()
    invitation, _grant = _current()
    state = session["invitation"]
    person = db().get(Person, state.get("person_id", ""))
    if person is None:
        return redirect(url_for("invite.show"))
    texts = pages.TEXT[pages.current_lang()]
    values = {k: request.form.get(k, "").strip() for k in ("phone", "address")}
    contact: dict[str, str] = {}
    errors: dict[str, str] = {}
    if values["phone"]:
        try:
            contact["phone"] = e164(values["phone"])
        except ValueError:
            errors["phone"] = texts["bad_phone"]
    if values["address"]:
        try:
            contact["address"] = postal_address(values["address"])
        except ValueError:
            errors["address"] = texts["bad_address"]
    if errors:
        return pages.render("invite_contact.html", 422, values={**_contact_values(person, invitation), **values},
                            errors=errors)
    try:
        access.accept(db(), state["token"], person, password_hash=state.get("password_hash"), contact=contact,
                      holder_email_on_file=register.email_on_file)
    except access.WrongPerson:
        db().rollback()
        return _invalid("wrong_person")
    session.pop("invitation", None)
    login = accounts.start_login_session(db(), person, acr=state["acr"], amr=state["amr"], method=state["method"])
    db().commit()
    return signed_in(login.sid)
