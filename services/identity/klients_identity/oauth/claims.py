"""Who a token is for and what it says about them: the login behind it (``Subject``), the person's live
grants (the ``grants`` claim, read on every token) and the OpenID Connect claims about the person."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from authlib.oidc.core import UserInfo
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from klients_common.grants import Grant as TokenGrant
from klients_common.grants import Role, SubuserLevel, rights_for
from klients_common.riga import end_of_day_epoch, riga_today

from ..db import db
from ..models import Grant, Person


@dataclass
class Subject:
    """The person (by id; loaded only when an ID token needs their name) and the login a token is for."""

    person_id: str
    acr: str
    amr: list[str]
    auth_time: datetime
    sid: str
    family_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session_expires: datetime | None = None  # the login's absolute end: no refresh token outlives it
    loaded_person: Any = None  # what the ID token says about the person (a row with Person's columns), if read

    def get_user_id(self) -> str:
        """Return the ``sub``."""
        return self.person_id

    @property
    def person(self) -> Any:
        """Return the person (read with the login, or one query when needed)."""
        person = self.loaded_person or db().get(Person, self.person_id)
        if person is None:
            raise LookupError(self.person_id)
        return person


GRANT_COLUMNS = (Grant.contract, Grant.role, Grant.level, Grant.valid_from, Grant.valid_until)  # ``grants_of``'s
LIVE_GRANTS = select(*GRANT_COLUMNS).where(
    Grant.person_id == bindparam("person"), Grant.status == "active")  # built once: it runs on every token


def live_grants(session: Session, person_id: str, today: date | None = None) -> list[TokenGrant]:
    """Return the person's active grants within their dates (Riga days), as token grants."""
    # Core on the session's connection: the grants do not depend on what the session has pending, so no
    # autoflush and no ORM execution layer.
    return grants_of(session.connection().execute(LIVE_GRANTS, {"person": person_id}), today)


def grants_of(rows: Iterable[Any], today: date | None = None) -> list[TokenGrant]:
    """Return the token grants of active grant rows (``contract, role, level, valid_from, valid_until``: a row
    whose contract is None is no grant, as an outer join gives for a person without any) that are within
    their dates (Riga days) ``today``."""
    today = today or riga_today()
    result = []
    for contract, role_name, level_name, valid_from, valid_until in rows:
        if contract is None or (valid_until is not None and valid_until < today) or \
                (valid_from is not None and valid_from > today):
            continue
        role = Role(role_name)
        level = SubuserLevel(level_name) if level_name else None
        until = end_of_day_epoch(valid_until) if valid_until else None
        result.append(TokenGrant(contract, role, rights_for(role, level), until))
    return result


def user_info(person: Person, scope: str, *, sid: str | None = None) -> UserInfo:
    """Return the OIDC claims about ``person`` that ``scope`` allows (never the personal code)."""
    info = UserInfo(sub=person.id)
    if sid:
        info["sid"] = sid
    if "profile" in scope.split():
        info.update(given_name=person.given_name, family_name=person.family_name,
                    name=f"{person.given_name} {person.family_name}".strip(), locale=person.language)
    if "email" in scope.split() and person.email:
        info.update(email=person.email, email_verified=True)
    return info
