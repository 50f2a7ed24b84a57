"""Helpers for the portal's tests: its URL, a person logged in to it over plain HTTP (their identity login
planted, then the portal's own code flow), its session rows, and a contract with a bill and a meter."""

from __future__ import annotations

import os
import re
from datetime import date
from decimal import Decimal
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from klients_common.db import make_engine
from tests.support.oidc_helpers import logged_in_browser

PORTAL_URL = os.environ.get("PORTAL_URL", "http://127.0.0.1:18300")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.")


def portal_sessions() -> Any:
    """A session factory on the portal's database."""
    return sessionmaker(make_engine(os.environ["PORTAL_DATABASE_URL"]), expire_on_commit=False)


def session_rows() -> list[Any]:
    """Every portal session row."""
    from klients_portal.models import PortalSession

    with portal_sessions()() as db:
        return list(db.scalars(select(PortalSession)))


def row_of(browser: requests.Session) -> Any:
    """The portal session row of ``browser``'s cookie (None when there is none)."""
    from klients_portal.models import PortalSession
    from klients_portal.store import hash_id

    raw = browser.cookies.get("klients_portal")
    if raw is None:
        return None
    with portal_sessions()() as db:
        return db.get(PortalSession, hash_id(raw))


def update_row(browser: requests.Session, **values: Any) -> None:
    """Change ``browser``'s portal session row (to age it, or expire its access token)."""
    from klients_portal.models import PortalSession
    from klients_portal.store import hash_id

    with portal_sessions()() as db:
        row = db.get(PortalSession, hash_id(browser.cookies["klients_portal"]))
        for name, value in values.items():
            setattr(row, name, value)
        db.commit()


def portal_login(grants: tuple[tuple[str, ...], ...] = (("LVG-100001", "owner"),), *,
                 next_path: str | None = None, status: int = 200,
                 **kwargs: Any) -> tuple[requests.Session, requests.Response]:
    """A browser logged in at identity (planted) that then logs in to the portal; return it and the page it
    ended on."""
    browser, _person, _sid = logged_in_browser(grants=grants, **kwargs)
    params = {"next": next_path} if next_path else {}
    landed = browser.get(f"{PORTAL_URL}/login", params=params, timeout=20)
    assert landed.status_code == status, landed.text[:500]
    assert landed.url.startswith(PORTAL_URL), landed.url
    return browser, landed


def cipher(*keys: str) -> Any:
    """The portal's token cipher with ``keys`` (by default its configured ones)."""
    from klients_portal.crypto import TokenCipher

    return TokenCipher(keys or tuple(os.environ["PORTAL_SESSION_KEY"].split(",")))


def secrets_of(row: Any) -> list[str]:
    """The tokens a session row holds, decrypted (what must never reach the browser)."""
    opened = (cipher().decrypt(getattr(row, c), row=row.id_hash, column=c)
              for c in ("access_token", "refresh_token", "id_token"))
    return [t for t in opened if t]


def assert_no_token(response: requests.Response, tokens: list[str]) -> None:
    """No token (nor anything shaped like a JWT) in the answer's body, headers or cookies, nor in any redirect
    on the way to it."""
    for answer in [*response.history, response]:
        text = answer.content.decode("utf-8", "replace")
        headers = "\n".join(f"{k}: {v}" for k, v in answer.headers.items())
        for place in (text, headers):
            assert not JWT.search(place), answer.url
            for token in tokens:
                assert token not in place


def make_household(new_contract: Any, new_meter: Any, billing_sessions: Any, *, personal_code: str | None = None,
                   holder_name: str = "Jānis Bērziņš") -> tuple[str, str]:
    """A contract (of ``personal_code``) with an open invoice and a meter with a year of readings."""
    from klients_billing import invoicing
    from klients_billing.models import Contract, MeteredConsumption
    from tests.support.access_helpers import unique_email

    contract = new_contract(personal_code=personal_code, email=unique_email("portal"), holder_name=holder_name)
    with billing_sessions() as session:
        session.add(MeteredConsumption(contract=contract.number, meter="M", period="2030-01", reading_id=1,
                                       consumption_m3=80, consumption_kwh=Decimal("844"), source="customer",
                                       read_on=date(2030, 1, 28), submitted_at=date(2030, 1, 28)))
        invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id), period="2030-01",
                                issue_date=date(2030, 2, 3))
        session.commit()
    meter = new_meter([(date(2025, m, 28), 100 * m) for m in range(1, 13)], installed_on=date(2024, 12, 28),
                      contract=contract.number)
    return contract.number, meter.serial_number
