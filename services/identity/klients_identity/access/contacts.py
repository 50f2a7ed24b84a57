"""A person's contact details (docs/api.md, ``PATCH /api/v1/me/contact``): e-mail, phone (E.164), postal
address, language.

A new e-mail address is used only after the link sent to it is opened; the old address is then told.
Changing the address someone logs in with, or the phone number (where notices of such changes go), needs a
strong login (``acr`` substantial or higher); the password login of the old contact address (only that one:
a person may hold several) moves to the new address. An address another person logs in with cannot be
taken (``AddressTaken``, nothing changes).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_common.digests import secret_digest
from klients_common.errors import NotFound, StepUpRequired, ValidationFailed
from klients_common.outbox import enqueue

from ..models import EmailToken, PasswordLogin, Person, as_utc, outbox, utcnow
from .accounts import audit

FIELDS = {"email", "phone", "address", "language", "reminders"}
LINK_TTL = timedelta(hours=24)


class AddressTaken(Exception):
    """The confirmed address is already another person's login."""


def contact_out(session: Session, person: Person) -> dict[str, Any]:
    """Return the person's contact details, with an e-mail change waiting for its link if any."""
    pending = session.scalar(select(EmailToken.email).where(
        EmailToken.person_id == person.id, EmailToken.purpose == "contact", EmailToken.used_at.is_(None),
        EmailToken.expires_at > utcnow()).order_by(EmailToken.created_at.desc()).limit(1))
    return {"given_name": person.given_name, "family_name": person.family_name, "email": person.email,
            "email_pending": pending, "phone": person.phone, "address": person.address, "language": person.language,
            "reminders": person.reminders}


def e164(value: object) -> str:
    """Return a phone number (Latvian if no country code) in E.164; raise ValueError if it is not one."""
    try:
        number = phonenumbers.parse(str(value), "LV")
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def postal_address(value: object) -> str:
    """Return a trimmed postal address of 1–300 characters; raise ValueError otherwise."""
    if not isinstance(value, str) or not 0 < len(value.strip()) <= 300:
        raise ValueError("bad address")
    return value.strip()


def _errors(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def update(session: Session, *, person_id: str, changes: dict[str, Any], issuer_url: str,
           strong: bool) -> dict[str, Any]:
    """Apply phone, address and language at once; send a verification link for a new e-mail address."""
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("person not found")
    errors = [_errors(k, "unknown_field", f"{k} cannot be changed here") for k in sorted(set(changes) - FIELDS)]
    clean: dict[str, Any] = {}
    if "phone" in changes:
        try:
            clean["phone"] = e164(changes["phone"])
        except ValueError:
            errors.append(_errors("phone", "bad_phone", "give a phone number, e.g. +371 20000000"))
    if "address" in changes:
        try:
            clean["address"] = postal_address(changes["address"])
        except ValueError:
            errors.append(_errors("address", "bad_address", "the address is text of at most 300 characters"))
    if "language" in changes:
        if changes["language"] not in ("lv", "en"):
            errors.append(_errors("language", "bad_language", "language is lv or en"))
        else:
            clean["language"] = changes["language"]
    if "reminders" in changes:
        if not isinstance(changes["reminders"], bool):
            errors.append(_errors("reminders", "bad_reminders", "reminders is true or false"))
        else:
            clean["reminders"] = changes["reminders"]
    new_email = None
    if "email" in changes:
        try:
            new_email = validate_email(str(changes["email"]), check_deliverability=False).normalized.lower()
        except EmailNotValidError as exc:
            errors.append(_errors("email", "bad_email", str(exc)))
    if errors:
        raise ValidationFailed("The contact details have errors.", {"errors": errors})
    if clean.get("phone", person.phone) != person.phone and not strong:  # where security notices go, like e-mail
        raise StepUpRequired("changing the phone number needs a strong login",
                             {"acr_values": LOA_SUBSTANTIAL})
    if new_email and new_email != person.email:
        if session.scalar(select(PasswordLogin.email).where(PasswordLogin.person_id == person.id)) and not strong:
            raise StepUpRequired("changing the e-mail you log in with needs a strong login",
                                 {"acr_values": LOA_SUBSTANTIAL})
        token = secrets.token_urlsafe(32)
        expires = utcnow() + LINK_TTL
        session.add(EmailToken(token_hash=secret_digest(token), purpose="contact",
                               email=new_email, person_id=person.id, expires_at=expires))
        enqueue(session, outbox, "contact_email_verification_requested", {
            "to": new_email, "link": f"{issuer_url}/login/email/contact/{token}", "expires_at": expires.isoformat(),
            "lang": clean.get("language", person.language)})
    for name, value in clean.items():
        setattr(person, name, value)
    if clean:
        audit(session, actor=person.id, action="contact_updated", subject=person.id, fields=sorted(clean))
    if {"language", "reminders"} & set(clean):
        tell_preferences(session, person, person.email)
    session.commit()
    return contact_out(session, person)


def tell_preferences(session: Session, person: Person, email: str | None) -> None:
    """Tell notifications the language and reminder choice for the person's address."""
    if email:
        enqueue(session, outbox, "contact_preferences_changed", {
            "email": email, "language": person.language, "reminders": person.reminders,
            "changed_at": utcnow().isoformat()})


def confirm_email(session: Session, token: str) -> Person | None:
    """Apply the e-mail address a contact link was sent to; tell the old address. None if the link is bad."""
    row = session.get(EmailToken, secret_digest(token))
    if row is None or row.purpose != "contact" or row.used_at is not None or as_utc(row.expires_at) < utcnow():
        return None
    person = session.get(Person, row.person_id)
    if person is None:
        return None
    taken = session.get(PasswordLogin, row.email)
    if taken is not None and taken.person_id != person.id:
        raise AddressTaken(row.email)
    row.used_at = utcnow()
    old = person.email
    person.email = row.email
    login = session.get(PasswordLogin, old) if old else None  # the login of the old address, no other
    if login is not None and login.person_id == person.id and taken is None:
        session.add(PasswordLogin(email=row.email, person_id=person.id, password_hash=login.password_hash,
                                  created_at=login.created_at))
        session.delete(login)
    if old:
        enqueue(session, outbox, "contact_email_changed", {"to": old, "new_email": row.email,
                                                          "lang": person.language, "phone": person.phone})
    tell_preferences(session, person, row.email)
    audit(session, actor=person.id, action="contact_email_changed", subject=person.id, publish=False)  # the
    # event of that name is the notice to the old address, above: one event, one shape
    try:
        session.commit()
    except IntegrityError as exc:  # another person took the address at the same moment
        session.rollback()
        raise AddressTaken(row.email) from exc
    return person
