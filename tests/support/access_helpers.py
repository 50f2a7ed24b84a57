"""Test helpers for access management: persons with grants planted in identity's database (as a finished
registration leaves them), the invitation links notifications e-mailed, and an operator recording an
application for an authorised person."""

from __future__ import annotations

import re
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import requests

from klients_common.riga import riga_today
from klients_identity.models import Grant, Person
from tests.support.helpers import csrf_of, mails
from tests.support.oidc_helpers import ISSUER, finish, start_smartid
from tests.support.stack import identity_session, wait_until

PASSWORD = "kalnu-ozols-2026-rits"


def plant_person(contract: str | None = None, role: str = "owner", level: str | None = None, *,
                 email: str | None = None, personal_code: str | None = None, valid_until: date | None = None,
                 given_name: str = "Ilze", family_name: str = "Liepa", language: str = "lv") -> tuple[str, str | None]:
    """Create a person (and a grant on ``contract``); return (person id, grant id)."""
    person_id = str(uuid.uuid4())
    grant_id = str(uuid.uuid4()) if contract else None
    with identity_session() as session:
        session.add(Person(id=person_id, given_name=given_name, family_name=family_name, email=email,
                           personal_code=personal_code, language=language))
        session.flush()
        if contract:
            session.add(Grant(id=grant_id, person_id=person_id, contract=contract, role=role, level=level,
                              status="active", valid_until=valid_until, created_by="test"))
    return person_id, grant_id


def unique_email(prefix: str = "user") -> str:
    """Return an address no other test uses (mail lookups filter by recipient)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.lv"


def invitation_link(maildir: Path, to: str, *, after: float | None = None, count: int = 1) -> str:
    """Wait for the ``count``-th mail to ``to`` and return the invitation link in it."""
    wait_until(f"mail to {to}", lambda: len(mails(maildir, to=to, after=after)) >= count, timeout=20)
    text = mails(maildir, to=to, after=after)[count - 1].get_body(("plain",)).get_content()
    match = re.search(r"(http://\S+/invite/[A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


def now() -> float:
    """Return the time a mail must be written after (a second earlier, for file-time granularity)."""
    return time.time() - 1


def open_and_set_password(link: str, password: str = PASSWORD) -> tuple[requests.Session, requests.Response]:
    """Open an invitation link in a new browser and choose the password."""
    browser = requests.Session()
    page = browser.get(link, timeout=10)
    assert page.status_code == 200 and 'id="invite-text"' in page.text
    chosen = browser.post(f"{ISSUER}/invite", data={"csrf": csrf_of(page), "password": password,
                                                    "password2": password}, timeout=10, allow_redirects=False)
    return browser, chosen


def smartid_login(browser: requests.Session, personal_code: str) -> requests.Response:
    """Log in with the Smart-ID simulator and return the page the login ends on."""
    return finish(browser, start_smartid(browser, personal_code=personal_code))


PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def record(browser: requests.Session, contract: str, *, attachment: tuple[str, bytes, str] = ("app.pdf", PDF,
           "application/pdf"), **fields: str) -> requests.Response:
    form = browser.get(f"{ISSUER}/operator/applications/new", timeout=10)
    data = {"csrf": csrf_of(form), "contract": contract, "kind": "delegate", "name": "Ādolfs Pilnvarnieks",
            "personal_code": "050405-10009", "email": unique_email("delegate"),
            "valid_until": (riga_today() + timedelta(days=180)).isoformat(), **fields}
    return browser.post(f"{ISSUER}/operator/applications/new", data=data, files={"attachment": attachment},
                        timeout=30)


def application_id(page: requests.Response) -> str:
    return page.url.rstrip("/").rsplit("/", 1)[-1]
