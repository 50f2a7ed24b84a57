"""Access management (docs/access.md, "Roles and rights", "The rules"): additional users, authorised persons,
invitations.

Every change goes through this module, whether it comes from the public API (over identity's RPC), an
operator page or the invitation pages, so the rules live once:

- An owner or a delegate manages sub-users; only the holder (owner) grants or ends a delegate's mandate
  online; nobody changes an owner grant here (those follow the client register).
- A new grant starts ``invited`` with a single-use link (≥128-bit random, stored hashed) and a deadline.
  Opening it, setting a password and a strong login whose personal code matches (when one was given)
  makes it ``active``; the inviter is told.
- Revoking reaches every service at once (``grant_revoked`` on the bus, which ``RevocationAware`` services
  hear), and the refresh that follows no longer carries the grant.
- End dates are the last day (Europe/Riga) a grant is valid; tokens carry the end as ``until`` and
  ``end_ended_grants`` closes grants whose day has passed.

Every change is audited with who acted, in which role, for whom, on which contract.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_common.digests import secret_digest
from klients_common.errors import Conflict, Forbidden, NotFound, StepUpRequired, ValidationFailed
from klients_common.grants import SubuserLevel
from klients_common.outbox import enqueue
from klients_common.personal_code import normalise_personal_code
from klients_common.riga import riga_today

from ..models import AuditEvent, Grant, Invitation, LoginSession, PasswordLogin, Person, as_utc, outbox, utcnow
from .accounts import audit

log = logging.getLogger(__name__)
INVITATION_TTL = timedelta(hours=72)
MANDATE_SIGNING_MAX_AGE = 15 * 60  # an online mandate is "signed" by a strong login at most this old (seconds)
LEVELS = {level.value for level in SubuserLevel}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a person (with their role on the contract) or an operator (``operator:<username>``)."""

    id: str
    role: str  # owner, delegate, subuser, operator
    name: str = ""

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


# --- reading -----------------------------------------------------------------------------------------------

def display_status(grant: Grant, invitation: Invitation | None, today: date | None = None) -> str:
    """Return the status shown to people: invited, expired (invitation not taken up in time), active, ended
    (its end date passed), revoked."""
    today = today or riga_today()
    if grant.status == "invited":
        live = invitation is not None and invitation.cancelled_at is None and as_utc(invitation.expires_at) > utcnow()
        return "invited" if live else "expired"
    if grant.status == "active" and grant.valid_until is not None and grant.valid_until < today:
        return "ended"
    return grant.status


def _latest_invitations(session: Session, grant_ids: Iterable[str]) -> dict[str, Invitation]:
    ids = list(grant_ids)
    if not ids:
        return {}
    rows = session.scalars(select(Invitation).where(Invitation.grant_id.in_(ids)).order_by(Invitation.created_at))
    return {row.grant_id: row for row in rows}  # the last (newest) per grant wins


def grant_out(grant: Grant, person: Person | None, invitation: Invitation | None,
              last_login: datetime | None = None) -> dict[str, Any]:
    """Return a grant shaped for the portal."""
    name = f"{person.given_name} {person.family_name}".strip() if person is not None else ""
    return {
        "id": grant.id, "contract": grant.contract, "role": grant.role, "level": grant.level,
        "name": name or grant.invitee_name or "",
        "email": (person.email if person is not None and person.email else grant.invitee_email),
        "status": display_status(grant, invitation),
        "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
        "invited_at": as_utc(grant.created_at).isoformat() if grant.role != "owner" else None,
        "invitation_expires_at": (as_utc(invitation.expires_at).isoformat()
                                  if invitation is not None and grant.status == "invited" else None),
        "accepted_at": as_utc(grant.accepted_at).isoformat() if grant.accepted_at else None,
        "ended_at": as_utc(grant.ended_at).isoformat() if grant.ended_at else None,
        "last_login_at": as_utc(last_login).isoformat() if last_login else None,
    }


def list_users(session: Session, contract: str) -> list[dict[str, Any]]:
    """Return everyone who has, had or is invited to access on the contract (newest first after owners)."""
    grants = list(session.scalars(select(Grant).where(Grant.contract == contract)))
    persons = {p.id: p for p in session.scalars(select(Person).where(
        Person.id.in_([g.person_id for g in grants if g.person_id])))}
    last = dict(session.execute(select(LoginSession.person_id, func.max(LoginSession.auth_time))
                                .where(LoginSession.person_id.in_(list(persons)))
                                .group_by(LoginSession.person_id)).all())
    invitations = _latest_invitations(session, [g.id for g in grants])
    order = {"owner": 0, "delegate": 1, "subuser": 2}
    grants.sort(key=lambda g: (order.get(g.role, 3), -as_utc(g.created_at).timestamp()))
    return [grant_out(g, persons.get(g.person_id or ""), invitations.get(g.id), last.get(g.person_id or ""))
            for g in grants]


def activity(session: Session, contract: str, limit: int = 200) -> dict[str, Any]:
    """Return who can access the contract (with rights, until when, last login) and what was done on it."""
    events = session.scalars(select(AuditEvent).where(AuditEvent.contract == contract)
                             .order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit))
    ids = set()
    rows = []
    for event in events:
        rows.append(event)
        ids.update(x for x in (event.actor, event.subject) if x)
    names = {p.id: f"{p.given_name} {p.family_name}".strip()
             for p in session.scalars(select(Person).where(Person.id.in_(list(ids))))}
    return {
        "users": list_users(session, contract),
        "events": [{
            "at": as_utc(e.at).isoformat(), "action": e.action,
            "actor": names.get(e.actor or "", e.actor if (e.actor or "").startswith(("operator:", "register"))
                               else ""),
            "actor_role": e.detail.get("as_role"),
            "subject": names.get(e.subject or "", ""),
            "detail": {k: v for k, v in e.detail.items()
                       if k in ("role", "level", "reason", "valid_until", "method", "meter", "value", "amount")},
        } for e in rows],
    }


def _grant_on(session: Session, contract: str, grant_id: str, *, lock: bool = False) -> Grant:
    query = select(Grant).where(Grant.id == grant_id, Grant.contract == contract)
    grant = session.scalar(query.with_for_update() if lock else query)
    if grant is None:
        raise NotFound(f"user {grant_id} not found on contract {contract}")
    return grant


# --- validation --------------------------------------------------------------------------------------------

def _field_error(field: str, code: str, message: str) -> dict[str, str]:
    return {"field": field, "code": code, "message": message}


def _parse_date(value: Any, field: str, errors: list[dict[str, str]]) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        errors.append(_field_error(field, "bad_date", f"{field} is a date, YYYY-MM-DD"))
        return None


def normal_email(value: Any) -> str | None:
    """Return the normalised (lower-case) address, or None if it is not one."""
    try:
        return validate_email(str(value).strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError:
        return None


@dataclass(frozen=True)
class NewUser:
    """A validated request to give someone access."""

    name: str
    email: str
    role: str
    level: str | None
    personal_code: str | None
    valid_from: date | None
    valid_until: date | None


def validate_new_user(body: dict[str, Any], *, today: date | None = None) -> NewUser:
    """Check a new user's details; raise ValidationFailed listing every bad field."""
    today = today or riga_today()
    errors: list[dict[str, str]] = []
    role = body.get("role", "subuser")
    if role not in ("subuser", "delegate"):
        errors.append(_field_error("role", "bad_role", "role is subuser or delegate"))
    name = body.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 200:
        errors.append(_field_error("name", "bad_name", "give the person's name (at most 200 characters)"))
    email = normal_email(body.get("email", "")) if isinstance(body.get("email"), str) else None
    if email is None:
        errors.append(_field_error("email", "bad_email", "give a valid e-mail address"))
    level = body.get("level")
    if role == "subuser" and level not in LEVELS:
        errors.append(_field_error("level", "bad_level", "level is bills or bills_readings"))
    if role == "delegate" and level is not None:
        errors.append(_field_error("level", "not_for_delegate", "a delegate has every right; leave level out"))
    code = body.get("personal_code")
    if code is not None:
        try:
            code = normalise_personal_code(str(code))
        except ValueError as exc:
            errors.append(_field_error("personal_code", "bad_personal_code", str(exc)))
            code = None
    elif role == "delegate":
        errors.append(_field_error("personal_code", "required", "a delegate's personal code is required"))
    valid_from = _parse_date(body.get("valid_from"), "valid_from", errors)
    valid_until = _parse_date(body.get("valid_until"), "valid_until", errors)
    if valid_until is not None and valid_until < today:
        errors.append(_field_error("valid_until", "in_the_past", "the end date must be today or later"))
    if valid_from is not None and valid_until is not None and valid_from > valid_until:
        errors.append(_field_error("valid_from", "after_end", "the start must not be after the end"))
    if role == "delegate" and valid_until is None:
        errors.append(_field_error("valid_until", "required", "a mandate needs an end date"))
    if errors:
        raise ValidationFailed("The user's details have errors.", {"errors": errors})
    return NewUser(name=str(name).strip(), email=str(email), role=str(role),
                   level=level if role == "subuser" else None, personal_code=code,
                   valid_from=valid_from, valid_until=valid_until)


# --- changing ----------------------------------------------------------------------------------------------

def _may_manage(actor: Actor, grant: Grant) -> None:
    """Owners and delegates manage sub-users; only the holder and operators touch a delegate's mandate;
    owner grants follow the register."""
    if grant.role == "owner":
        raise Forbidden("the holder's access follows the client register", {"reason": "owner_grant"})
    if grant.role == "delegate" and actor.role not in ("owner", "operator"):
        raise Forbidden("only the contract holder or customer service may change a mandate",
                        {"reason": "holder_only"})


def _cancel_links(session: Session, grant_id: str, now: datetime) -> None:
    """Cancel the grant's invitation links not used yet."""
    session.execute(update(Invitation).where(Invitation.grant_id == grant_id, Invitation.used_at.is_(None),
                                             Invitation.cancelled_at.is_(None)).values(cancelled_at=now))


def _close(session: Session, grant: Grant, *, status: str, by: str, reason: str) -> str:
    """End a grant (``revoked`` or ``ended``) and its open links; return the status it had."""
    was, now = grant.status, utcnow()
    grant.status, grant.ended_at, grant.ended_by, grant.end_reason = status, now, by, reason[:300]
    _cancel_links(session, grant.id, now)
    return was


def _send_invitation(session: Session, grant: Grant, *, link_base: str, ttl: timedelta, inviter: str,
                     lang: str) -> Invitation:
    """Create a fresh link for the grant (cancelling any earlier one) and have notifications e-mail it."""
    now = utcnow()
    _cancel_links(session, grant.id, now)
    token = secrets.token_urlsafe(32)  # 256 bits
    invitation = Invitation(token_hash=secret_digest(token), grant_id=grant.id, email=grant.invitee_email or "",
                            created_at=now, expires_at=now + ttl)
    session.add(invitation)
    enqueue(session, outbox, "invitation_created", {
        "to": grant.invitee_email, "lang": lang, "name": grant.invitee_name, "contract": grant.contract,
        "role": grant.role, "level": grant.level, "invited_by": inviter,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
        "link": f"{link_base.rstrip('/')}/invite/{token}?lang={lang}", "expires_at": invitation.expires_at.isoformat(),
    })
    return invitation


def _actor_name(session: Session, actor: Actor) -> str:
    if actor.name:
        return actor.name
    person = session.get(Person, actor.id)
    return f"{person.given_name} {person.family_name}".strip() if person is not None else ""


def invite(session: Session, actor: Actor, contract: str, new: NewUser, *, link_base: str,
           ttl: timedelta = INVITATION_TTL, lang: str = "lv", auth_time: int | None = None) -> dict[str, Any]:
    """Create a pending grant and e-mail its invitation. A delegate's mandate is given by the holder
    (online, signed by a recent strong login) or by an operator from an approved application."""
    if new.role == "delegate" and not actor.is_operator:
        if actor.role != "owner":
            raise Forbidden("only the contract holder may grant a mandate", {"reason": "holder_only"})
        if auth_time is None or auth_time < utcnow().timestamp() - MANDATE_SIGNING_MAX_AGE:
            raise StepUpRequired("granting a mandate is signed by a fresh strong login",
                                 {"acr_values": LOA_SUBSTANTIAL,
                                  "max_age": MANDATE_SIGNING_MAX_AGE})
    pending = session.scalar(select(Grant.id).where(
        Grant.contract == contract, Grant.status.in_(("invited", "active")),
        (Grant.invitee_email == new.email) | (
            Grant.person_id.in_(select(Person.id).where(Person.email == new.email)))))
    if new.personal_code is not None and pending is None:
        pending = session.scalar(select(Grant.id).join(Person, Person.id == Grant.person_id).where(
            Grant.contract == contract, Grant.status == "active", Person.personal_code == new.personal_code))
    if pending is not None:
        raise Conflict("this person already has or is invited to access on the contract", {"grant": pending})
    grant = Grant(id=str(uuid.uuid4()), person_id=None, contract=contract, role=new.role, level=new.level,
                  status="invited", valid_from=new.valid_from, valid_until=new.valid_until,
                  invitee_name=new.name, invitee_email=new.email, expected_personal_code=new.personal_code,
                  created_by=actor.id)
    session.add(grant)
    try:
        session.flush()  # two invitations racing for one address: the open-invitee index lets one through
    except IntegrityError as exc:
        session.rollback()
        raise Conflict("this person already has or is invited to access on the contract") from exc
    invitation = _send_invitation(session, grant, link_base=link_base, ttl=ttl, inviter=_actor_name(session, actor),
                                  lang=lang)
    audit(session, actor=actor.id, action="user_invited", contract=contract, as_role=actor.role, grant=grant.id,
          role=new.role, level=new.level, valid_until=new.valid_until.isoformat() if new.valid_until else None)
    session.commit()
    return grant_out(grant, None, invitation)


def change(session: Session, actor: Actor, contract: str, grant_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Change a sub-user's level or a grant's end date."""
    errors: list[dict[str, str]] = []
    unknown = sorted(set(body) - {"level", "valid_until"})
    errors += [_field_error(k, "unknown_field", f"{k} cannot be changed") for k in unknown]
    if not body:
        errors.append(_field_error("level", "required", "give level or valid_until"))
    grant = _grant_on(session, contract, grant_id, lock=True)
    _may_manage(actor, grant)
    if "level" in body and (grant.role != "subuser" or body["level"] not in LEVELS):
        errors.append(_field_error("level", "bad_level", "level is bills or bills_readings, for additional users"))
    until = grant.valid_until
    if "valid_until" in body:
        until = _parse_date(body["valid_until"], "valid_until", errors)
        if until is not None and until < riga_today():
            errors.append(_field_error("valid_until", "in_the_past", "the end date must be today or later"))
        if until is None and grant.role == "delegate":
            errors.append(_field_error("valid_until", "required", "a mandate needs an end date"))
    if errors:
        raise ValidationFailed("The change has errors.", {"errors": errors})
    if grant.status not in ("invited", "active"):
        raise Conflict(f"this access is {grant.status}; invite the person again")
    before = {"level": grant.level, "valid_until": grant.valid_until}
    if "level" in body:
        grant.level = body["level"]
    grant.valid_until = until
    narrowed = (before["level"] == "bills_readings" and grant.level == "bills") or (
        until is not None and (before["valid_until"] is None or until < before["valid_until"]))
    audit(session, actor=actor.id, action="user_changed", subject=grant.person_id, contract=contract,
          as_role=actor.role, grant=grant.id, role=grant.role, level=grant.level,
          valid_until=until.isoformat() if until else None)
    if narrowed and grant.status == "active" and grant.person_id:
        # Tokens minted before the change carry the wider rights; services refuse them from now.
        _announce_revocation(session, grant, actor, reason="rights narrowed", notify=False)
    session.commit()
    return _out(session, grant)


def resend(session: Session, actor: Actor, contract: str, grant_id: str, *, link_base: str,
           ttl: timedelta = INVITATION_TTL, lang: str = "lv") -> dict[str, Any]:
    """Send a new invitation link (the old one stops working); also after the deadline passed."""
    grant = _grant_on(session, contract, grant_id, lock=True)
    _may_manage(actor, grant)
    if grant.status != "invited":
        raise Conflict(f"this access is {grant.status}, there is no invitation to resend")
    _send_invitation(session, grant, link_base=link_base, ttl=ttl, inviter=_actor_name(session, actor), lang=lang)
    audit(session, actor=actor.id, action="invitation_resent", contract=contract, as_role=actor.role,
          grant=grant.id, role=grant.role)
    session.commit()
    return _out(session, grant)


def revoke(session: Session, actor: Actor, contract: str, grant_id: str, *, reason: str = "") -> dict[str, Any]:
    """Cancel an invitation or revoke access; services refuse the person's tokens for it at once."""
    grant = _grant_on(session, contract, grant_id, lock=True)
    if not (actor.role == "delegate" and grant.person_id == actor.id):  # a delegate may give up their own mandate
        _may_manage(actor, grant)
    if grant.status not in ("invited", "active"):
        raise Conflict(f"this access is already {grant.status}")
    was = _close(session, grant, status="revoked", by=actor.id,
                 reason=reason or ("invitation cancelled" if grant.status == "invited" else "revoked"))
    if was == "active" and grant.person_id:
        _announce_revocation(session, grant, actor, reason=grant.end_reason, notify=True)
    else:
        audit(session, actor=actor.id, action="invitation_cancelled", contract=contract, as_role=actor.role,
              grant=grant.id, role=grant.role)
    session.commit()
    return _out(session, grant)


def _announce_revocation(session: Session, grant: Grant, actor: Actor, *, reason: str, notify: bool) -> None:
    """Audit the loss of access and tell every service (and, if ``notify``, the person)."""
    person = session.get(Person, grant.person_id) if grant.person_id else None
    audit(session, actor=actor.id, action="grant_revoked", subject=grant.person_id, contract=grant.contract,
          as_role=actor.role, grant=grant.id, role=grant.role, reason=reason,
          event_extra={"revoked_at": utcnow().isoformat(), "notify": bool(notify and person and person.email),
                       "to": person.email if person else None, "lang": person.language if person else "lv",
                       "name": f"{person.given_name} {person.family_name}".strip() if person else ""})


def _out(session: Session, grant: Grant) -> dict[str, Any]:
    person = session.get(Person, grant.person_id) if grant.person_id else None
    return grant_out(grant, person, _latest_invitations(session, [grant.id]).get(grant.id))


def end_ended_grants(session: Session, now: datetime | None = None) -> int:
    """Close active grants whose last valid day has passed (Riga) and announce it; return how many."""
    today = riga_today(now)
    rows = list(session.scalars(select(Grant).where(Grant.status == "active", Grant.valid_until < today)
                                .limit(500).with_for_update(skip_locked=True)))
    for grant in rows:
        _close(session, grant, status="ended", by="system", reason="end date passed")
        _announce_revocation(session, grant, Actor(id="system", role="system"), reason="end date passed",
                             notify=True)
    session.commit()
    return len(rows)


# --- invitations -------------------------------------------------------------------------------------------

class InvitationInvalid(Exception):
    """The link is unknown, used, cancelled or past its deadline (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_invitation(session: Session, token: str) -> tuple[Invitation, Grant]:
    """Return the live invitation and its grant, or raise InvitationInvalid."""
    invitation = session.get(Invitation, secret_digest(token))
    if invitation is None:
        raise InvitationInvalid("unknown")
    grant = session.get(Grant, invitation.grant_id)
    if invitation.used_at is not None or grant is None or grant.status == "active":
        raise InvitationInvalid("used")
    if invitation.cancelled_at is not None or grant.status != "invited":
        raise InvitationInvalid("cancelled")
    if as_utc(invitation.expires_at) <= utcnow():
        raise InvitationInvalid("expired")
    return invitation, grant


class WrongPerson(Exception):
    """The strong login's personal code is not the one the invitation was made for."""


def take_up_recipients(session: Session, grant: Grant, taker: Person,
                       holder_email_on_file: Callable[[str], str | None] | None = None) -> list[tuple[str, str, str]]:
    """Return who hears that ``taker`` took up ``grant`` (address, language, name): the contract's holder, at
    their contact e-mail here or else the client register's address (``holder_email_on_file``), and the
    person who invited, when that is someone else. Nobody twice, and never the taker."""
    found: list[tuple[str, str, str]] = []

    def add(email: str | None, lang: str, name: str) -> None:
        taken = {f[0].lower() for f in found} | {(taker.email or "").lower()}
        if email and email.lower() not in taken:
            found.append((email, lang, name))

    holder = session.scalar(select(Person).join(Grant, Grant.person_id == Person.id).where(
        Grant.contract == grant.contract, Grant.role == "owner", Grant.status == "active").limit(1))
    holder_email = holder.email if holder is not None else None
    if not holder_email and holder_email_on_file is not None:
        try:
            holder_email = holder_email_on_file(grant.contract)
        except Exception:  # noqa: BLE001 - the register unreachable must not undo a take-up; logged
            log.warning("the register's e-mail for %s could not be read; the holder is not told", grant.contract)
    add(holder_email, holder.language if holder is not None else "lv",
        f"{holder.given_name} {holder.family_name}".strip() if holder is not None else "")
    inviter = session.get(Person, grant.created_by) if grant.created_by else None
    if inviter is not None and (holder is None or inviter.id != holder.id):
        add(inviter.email, inviter.language, f"{inviter.given_name} {inviter.family_name}".strip())
    return found


def accept(session: Session, token: str, person: Person, *, password_hash: str | None,
           contact: dict[str, str], holder_email_on_file: Callable[[str], str | None] | None = None) -> Grant:
    """Take up an invitation: the grant becomes the person's and active, the link is spent, and the holder
    and the inviter are told (``take_up_recipients``). ``person`` comes from a strong login; raise WrongPerson
    or InvitationInvalid (nothing changed)."""
    invitation, grant = open_invitation(session, token)
    session.refresh(grant, with_for_update=True)
    if grant.status != "invited":
        raise InvitationInvalid("used")
    if grant.expected_personal_code and grant.expected_personal_code != person.personal_code:
        raise WrongPerson(grant.id)
    already = session.scalar(select(Grant.id).where(Grant.contract == grant.contract, Grant.person_id == person.id,
                                                    Grant.status == "active"))
    if already is not None:
        raise InvitationInvalid("already")
    if password_hash:  # the invited address becomes (one of) the person's e-mail + password logins
        login = session.get(PasswordLogin, invitation.email)
        if login is None:
            session.add(PasswordLogin(email=invitation.email, person_id=person.id, password_hash=password_hash))
        elif login.person_id == person.id:
            login.password_hash = password_hash
        else:
            raise InvitationInvalid("email_taken")
    if not person.email:
        person.email = contact.get("email") or invitation.email
    for name in ("phone", "address"):
        if contact.get(name):
            setattr(person, name, contact[name])
    now = utcnow()
    invitation.used_at = now
    grant.person_id, grant.status, grant.accepted_at = person.id, "active", now
    if grant.expected_personal_code is None:
        grant.expected_personal_code = person.personal_code
    audit(session, actor=person.id, action="invitation_accepted", subject=person.id, contract=grant.contract,
          as_role=grant.role, grant=grant.id, role=grant.role, level=grant.level)
    for to, lang, name in take_up_recipients(session, grant, person, holder_email_on_file):
        enqueue(session, outbox, "invitation_accepted_notice", {
            "to": to, "lang": lang, "name": name, "invitee": f"{person.given_name} {person.family_name}".strip(),
            "contract": grant.contract, "role": grant.role, "level": grant.level, "grant": grant.id})
    session.commit()
    return grant


# --- what other services tell identity -----------------------------------------------------------------------

def contract_transferred(session: Session, contract: str, holder_personal_code: str) -> int:
    """The register moved the contract to a new holder: the previous holder's access and everything they
    granted (mandates, additional users, open invitations) ends; the new holder, if already a person here,
    becomes the owner. Idempotent (a repeated event finds nothing left to end). Return how many ended."""
    register = Actor(id="register", role="register")
    ended = 0
    for grant in session.scalars(select(Grant).where(Grant.contract == contract,
                                                     Grant.status.in_(("invited", "active"))).with_for_update()):
        person = session.get(Person, grant.person_id) if grant.person_id else None
        if grant.role == "owner" and person is not None and person.personal_code == holder_personal_code:
            continue
        was = _close(session, grant, status="revoked", by="register", reason="contract transferred to a new holder")
        if was == "active" and person is not None:
            _announce_revocation(session, grant, register, reason=grant.end_reason, notify=grant.role != "owner")
        else:
            audit(session, actor="register", action="invitation_cancelled", contract=contract, grant=grant.id,
                  role=grant.role, reason=grant.end_reason)
        ended += 1
    holder = session.scalar(select(Person).where(Person.personal_code == holder_personal_code))
    if holder is not None and session.scalar(select(Grant.id).where(
            Grant.contract == contract, Grant.person_id == holder.id, Grant.role == "owner",
            Grant.status == "active")) is None:
        session.add(Grant(id=str(uuid.uuid4()), person_id=holder.id, contract=contract, role="owner",
                          status="active", created_by="register"))
        audit(session, actor="register", action="grant_added", subject=holder.id, contract=contract, role="owner")
    session.commit()
    return ended


def record_activity(session: Session, *, person: Any, contract: Any, action: str, role: Any,
                    **detail: Any) -> None:
    """Put what a person did at another service (a reading, a payment) on the contract's activity list."""
    if not isinstance(person, str) or not isinstance(contract, str):
        return  # operator entries, estimates and the like: no person acted
    audit(session, actor=person, action=action, subject=person, contract=contract, publish=False,
          as_role=role if isinstance(role, str) else None, **detail)
