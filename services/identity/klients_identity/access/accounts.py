"""Persons, their owner grants from the client register, login sessions, and the audit trail.

After a strong login identity asks billing which contracts the personal code holds (docs/access.md, "The rules"):
the person is found or created, ``owner`` grants follow the register (a contract moved to someone else
loses its owner grant), and a person with no contract and no other grant is refused.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from klients_common.outbox import enqueue

from ..connectors.base import VerifiedIdentity
from ..models import AuditEvent, Grant, LoginSession, PasswordLogin, Person, RefreshToken, outbox, utcnow
from ..oauth import revocation

LOGIN_TTL = timedelta(hours=8)


class NoContract(Exception):
    """The person holds no contract and has no other grant: registration is refused."""


def audit(session: Session, *, actor: str | None, action: str, subject: str | None = None,
          contract: str | None = None, event_extra: dict[str, Any] | None = None, publish: bool = True,
          **detail: Any) -> None:
    """Record an audit event and announce it on the bus (``identity.<action>``, unless ``publish`` is false);
    ``event_extra`` goes into the event only (e.g. where to send a notice), not into the audit log."""
    session.add(AuditEvent(actor=actor, action=action, subject=subject, contract=contract, detail=detail))
    if publish:
        enqueue(session, outbox, action, {"actor": actor, "subject": subject, "contract": contract, **detail,
                                          **(event_extra or {})})


def find_or_create_person(session: Session, identity: VerifiedIdentity) -> tuple[Person, bool]:
    """Return the person with this personal code (names refreshed), creating them the first time."""
    person = session.scalar(select(Person).where(Person.personal_code == identity.personal_code))
    if person is not None:
        person.given_name, person.family_name = identity.given_name, identity.family_name
        return person, False
    person = Person(id=str(uuid.uuid4()), personal_code=identity.personal_code, given_name=identity.given_name,
                    family_name=identity.family_name, language="lv")
    session.add(person)
    session.flush()
    return person, True


def sync_owner_grants(session: Session, person: Person, held: list[str]) -> None:
    """Make the person's active owner grants exactly the contracts the register says they hold."""
    current = {g.contract: g for g in session.scalars(select(Grant).where(
        Grant.person_id == person.id, Grant.role == "owner", Grant.status == "active"))}
    for contract in sorted(set(held) - set(current)):
        session.add(Grant(id=str(uuid.uuid4()), person_id=person.id, contract=contract, role="owner",
                          status="active", created_by="register"))
        audit(session, actor="register", action="grant_added", subject=person.id, contract=contract, role="owner")
    for contract, grant in current.items():
        if contract not in held:
            grant.status, grant.ended_at = "revoked", utcnow()
            audit(session, actor="register", action="grant_revoked", subject=person.id, contract=contract,
                  role="owner", reason="no longer the holder in the client register",
                  event_extra={"revoked_at": utcnow().isoformat(), "notify": False})


def complete_strong_login(session: Session, identity: VerifiedIdentity,
                          contracts_of: Callable[[str], list[dict[str, Any]]], *,
                          invited: bool = False) -> Person:
    """Register or find the person behind a strong login and sync their owner grants; raise NoContract
    unless they hold a contract, another grant, or (``invited``) are taking up an invitation."""
    held = [c["number"] for c in contracts_of(identity.personal_code)]
    existing = session.scalar(select(Person).where(Person.personal_code == identity.personal_code))
    other_grants = existing is not None and session.scalar(select(Grant.id).where(
        Grant.person_id == existing.id, Grant.role != "owner", Grant.status == "active").limit(1)) is not None
    if not held and not other_grants and not invited:
        if existing is not None:
            sync_owner_grants(session, existing, [])
            session.commit()
        raise NoContract(identity.personal_code)
    person, created = find_or_create_person(session, identity)
    if created:
        audit(session, actor=person.id, action="person_registered", subject=person.id, method=identity.method)
    sync_owner_grants(session, person, held)
    link_email_accounts(session, person, held)
    return person


def link_email_accounts(session: Session, person: Person, held: list[str]) -> None:
    """Fold into ``person`` the e-mail-only accounts of the same holder: an account registered by e-mail
    proved the register's address of a contract this personal code holds. Its password logins move to
    the strong person (so e-mail + password keeps working, with every grant), its own grants end."""
    if not held:
        return
    twins = list(session.scalars(select(Person).join(Grant, Grant.person_id == Person.id).where(
        Person.personal_code.is_(None), Person.id != person.id, Grant.role == "owner", Grant.status == "active",
        Grant.contract.in_(held)).distinct()))
    for twin in twins:
        session.execute(update(PasswordLogin).where(PasswordLogin.person_id == twin.id)
                        .values(person_id=person.id))
        for grant in session.scalars(select(Grant).where(Grant.person_id == twin.id, Grant.status == "active")):
            grant.status, grant.ended_at, grant.ended_by = "revoked", utcnow(), "linking"
            grant.end_reason = "account linked to the holder's strong login"
        if not person.email and twin.email:
            person.email = twin.email
        end_sessions(session, twin.id, reason="accounts_linked")
        audit(session, actor=person.id, action="accounts_linked", subject=person.id, linked=twin.id)


def start_login_session(session: Session, person: Person, *, acr: str, amr: list[str], method: str) -> LoginSession:
    """Open a login session (the ``sid`` of the person's tokens)."""
    now = utcnow()
    login = LoginSession(sid=secrets.token_urlsafe(24), person_id=person.id, acr=acr, amr=amr, auth_time=now,
                         expires_at=now + LOGIN_TTL)
    session.add(login)
    audit(session, actor=person.id, action="login", subject=person.id, method=method, acr=acr)
    return login


def end_sessions(session: Session, person_id: str, *, reason: str = "password_change") -> None:
    """End the person's login sessions and revoke their refresh and access tokens (after a password change)."""
    now = utcnow()
    ended = session.scalars(update(LoginSession).where(
        LoginSession.person_id == person_id, LoginSession.ended_at.is_(None), LoginSession.expires_at > now)
        .values(ended_at=now).returning(LoginSession.sid)).all()
    session.execute(update(LoginSession).where(LoginSession.person_id == person_id, LoginSession.ended_at.is_(None))
                    .values(ended_at=now))
    session.execute(update(RefreshToken).where(RefreshToken.person_id == person_id).values(revoked=True))
    for sid in ended:  # their access tokens too, at every service
        revocation.revoke(session, "sid", sid, reason=reason, at=now)
