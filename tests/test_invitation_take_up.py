"""Taking up an invitation at identity's pages (docs/access.md, "The rules"): open the link, set
a password, confirm identity with a strong method whose personal code must match, fill in contacts; the
grant becomes active and the inviter is told. Bad links and the wrong person each get a clear page and
change nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import select

from klients_identity.models import Grant, Invitation, PasswordLogin
from tests.support.access_helpers import (
    invitation_link,
    now,
    open_and_set_password,
    plant_person,
    smartid_login,
    unique_email,
)
from tests.support.helpers import bearer, csrf_of, mails
from tests.support.oidc_helpers import ISSUER
from tests.support.stack import identity_session, wait_until

SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"


@pytest.fixture
def holder(new_contract, mint):
    contract = new_contract().number
    email = unique_email("holder")
    person, _ = plant_person(contract, email=email, given_name="Ērika", family_name="Šķēle")
    return {"contract": contract, "email": email,
            "token": mint({contract: "owner"}, subject=person, acr=SUBSTANTIAL, auth_time=int(time.time()))}


def invite(gateway, maildir, holder, **body) -> tuple[str, str, str]:
    """Invite someone; return (grant id, invitee address, link)."""
    email = body.pop("email", None) or unique_email("invitee")
    started = now()
    created = gateway.post(f"/api/v1/contracts/{holder['contract']}/users", headers=bearer(holder["token"]),
                           json={"name": "Ādolfs Ēvalds", "email": email, "level": "bills_readings", **body})
    assert created.status_code == 201, created.get_json()
    return created.get_json()["id"], email, invitation_link(maildir, email, after=started)


def grant_row(grant_id: str) -> tuple[str, str | None]:
    with identity_session() as session:
        row = session.get(Grant, grant_id)
        return row.status, row.person_id


def test_the_invitee_sets_a_password_confirms_with_smart_id_and_the_holder_is_told(gateway, holder, maildir, mint):
    grant, email, link = invite(gateway, maildir, holder, personal_code="020100-29990")
    browser, chosen = open_and_set_password(link)
    assert chosen.status_code == 303 and "/login?strong=1" in chosen.headers["Location"]  # 303 after a POST
    strong_only = browser.get(ISSUER + chosen.headers["Location"], timeout=10)
    assert "Smart-ID" in strong_only.text and "/login/email" not in strong_only.text
    contact_page = smartid_login(browser, "020100-29990")
    assert contact_page.status_code == 200 and email in contact_page.text
    bad = browser.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(contact_page), "phone": "12"}, timeout=10)
    assert bad.status_code == 422 and 'id="phone-error"' in bad.text
    assert grant_row(grant)[0] == "invited"
    started = now()
    done = browser.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(bad), "phone": "20 000 001",
                                                          "address": "Brīvības iela 1, Rīga"}, timeout=10)
    assert done.status_code == 200
    status, person = grant_row(grant)
    assert status == "active" and person
    with identity_session() as session:
        assert session.get(PasswordLogin, email).person_id == person
    listed = gateway.get(f"/api/v1/contracts/{holder['contract']}/users", headers=bearer(holder["token"]))
    mine = next(u for u in listed.get_json()["items"] if u["id"] == grant)
    assert mine["status"] == "active" and mine["accepted_at"]
    wait_until("the holder's notice", lambda: mails(maildir, to=holder["email"], after=started), timeout=20)
    # The holder is told the name the strong login proved, not the name the invitation was typed with.
    assert "ADULT TESTNUMBER" in mails(maildir, to=holder["email"], after=started)[0].get_body(("plain",)).get_content()
    assert requests.get(link, timeout=10).status_code == 400  # single use


def test_a_strong_login_with_another_personal_code_is_refused_and_changes_nothing(gateway, holder, maildir):
    grant, _, link = invite(gateway, maildir, holder, personal_code="050405-10009")
    browser, _ = open_and_set_password(link)
    refused = smartid_login(browser, "020100-29990")
    assert refused.status_code == 403 and "personas kods nesakrīt" in refused.text
    assert grant_row(grant) == ("invited", None)
    with identity_session() as session:
        assert session.scalar(select(Invitation.used_at).where(Invitation.grant_id == grant)) is None
    assert requests.get(link, timeout=10, allow_redirects=False).status_code == 302  # still usable by the right person


@pytest.mark.parametrize(("spoil", "status", "words"), [
    ("expire", 400, "termiņš ir beidzies"),
    ("cancel", 400, "atsaukts"),
    ("garble", 400, "nav derīga"),
])
def test_bad_links_say_what_to_do_next(gateway, holder, maildir, spoil, status, words):
    grant, _, link = invite(gateway, maildir, holder)
    if spoil == "expire":
        with identity_session() as session:
            session.scalar(select(Invitation).where(Invitation.grant_id == grant)).expires_at = \
                datetime.now(UTC) - timedelta(seconds=1)
    elif spoil == "cancel":
        assert gateway.delete(f"/api/v1/contracts/{holder['contract']}/users/{grant}",
                              headers=bearer(holder["token"])).status_code == 200
    else:
        link = link[:-4] + ("aaaa" if not link.endswith("aaaa") else "bbbb")
    page = requests.get(link, timeout=10)
    assert page.status_code == status and words in page.text
    assert grant_row(grant)[1] is None


def test_a_link_expiring_mid_flow_activates_nothing(gateway, holder, maildir):
    grant, _, link = invite(gateway, maildir, holder)
    browser, _ = open_and_set_password(link)
    contact_page = smartid_login(browser, "020100-29990")
    with identity_session() as session:
        session.scalar(select(Invitation).where(Invitation.grant_id == grant)).expires_at = \
            datetime.now(UTC) - timedelta(seconds=1)
    late = browser.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(contact_page)}, timeout=10)
    assert late.status_code == 400 and "termiņš ir beidzies" in late.text
    assert grant_row(grant) == ("invited", None)


def test_a_weak_password_is_refused_before_anything_else(gateway, holder, maildir):
    _, email, link = invite(gateway, maildir, holder)
    _browser, refused = open_and_set_password(link, password="parole")
    assert refused.status_code == 422 and 'role="alert"' in refused.text
    with identity_session() as session:
        assert session.get(PasswordLogin, email) is None
