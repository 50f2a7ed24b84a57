"""The refresh grant's rotation (``oauth.refresh.rotate``) on both databases identity runs on: one statement on
PostgreSQL, three on SQLite (the embedded default: no data-modifying CTE there), with the same rules: only a
live token of this client, in a standing login, rotates, once; the next token joins the family and ends with its
own login at the latest; the grants are the person's active ones within their dates."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from klients_common.db import make_engine, migrate
from klients_identity.models import Grant, LoginSession, Person, RefreshToken, as_utc, utcnow
from klients_identity.oauth.refresh import rotate
from tests.support.stack import identity_session


@pytest.fixture(params=["sqlite", "postgresql"])
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    if request.param == "postgresql":
        request.getfixturevalue("stack")  # identity's test database, migrated
        with identity_session() as pg:
            yield pg
        return
    url = f"sqlite:///{tmp_path / 'identity.db'}"
    migrate("klients_identity", url)
    engine = make_engine(url)
    embedded = sessionmaker(engine)()
    yield embedded
    embedded.close()
    engine.dispose()


def _login(session: Session, person: str, ends_in: timedelta) -> str:
    now, sid = utcnow(), uuid.uuid4().hex
    session.add(LoginSession(sid=sid, person_id=person, acr="substantial", amr=["smartid"], auth_time=now,
                             expires_at=now + ends_in))
    return sid


def _token(session: Session, person: str, sid: str, client: str = "klients-portal") -> str:
    now, value = utcnow(), uuid.uuid4().hex
    session.add(RefreshToken(token_hash=value, family_id=str(uuid.uuid4()), client_id=client, person_id=person,
                             sid=sid, scope="openid profile", acr="substantial", amr=["smartid"], auth_time=now,
                             issued_at=now, expires_at=now + timedelta(hours=8), revoked=False))
    session.flush()
    return value


def _rotate(session: Session, presented: str, client: str = "klients-portal") -> tuple[Any, str] | None:
    following = uuid.uuid4().hex
    rotation = rotate(session, presented_hash=presented, client_id=client, next_hash=following, now=utcnow())
    return None if rotation is None else (rotation, following)


def test_a_token_rotates_once_into_its_family_ending_with_its_own_login(session: Session) -> None:
    person = str(uuid.uuid4())
    session.add(Person(id=person, given_name="Anna", family_name="Bērziņa"))
    session.flush()
    today = date.today()
    for contract, status, until in (("R-LIVE", "active", None), ("R-ENDED", "active", today - timedelta(days=3)),
                                    ("R-REVOKED", "revoked", None)):
        session.add(Grant(id=str(uuid.uuid4()), person_id=person, contract=contract, role="owner", status=status,
                          valid_until=until))
    _login(session, person, timedelta(hours=1))  # another login of the person, ending sooner
    sid = _login(session, person, timedelta(hours=2))
    first = _token(session, person, sid)

    rotated = _rotate(session, first)
    assert rotated is not None
    (row, grants), following = rotated
    assert (row.person_id, row.sid, row.scope) == (person, sid, "openid profile")
    assert [g.contract for g in grants] == ["R-LIVE"]
    stored = session.get(RefreshToken, following)
    login = session.get(LoginSession, sid)
    assert stored is not None and login is not None
    assert stored.family_id == row.family_id and stored.rotated_at is None and not stored.revoked
    assert as_utc(stored.expires_at) == as_utc(login.expires_at)  # its own login's end, not the other's
    assert _rotate(session, first) is None  # single use
    assert _rotate(session, following, client="klients-other") is None  # bound to its client
    session.execute(update(LoginSession).where(LoginSession.sid == sid).values(ended_at=utcnow()))
    assert _rotate(session, following) is None  # the login ended
    assert session.scalar(select(RefreshToken.rotated_at).where(RefreshToken.token_hash == following)) is None


def test_a_person_without_grants_still_rotates(session: Session) -> None:
    person = str(uuid.uuid4())
    session.add(Person(id=person, given_name="Jānis", family_name="Kalniņš"))
    session.flush()
    rotated = _rotate(session, _token(session, person, _login(session, person, timedelta(hours=1))))
    assert rotated is not None and rotated[0][1] == []
