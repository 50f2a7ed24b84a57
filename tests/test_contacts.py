"""Contact details through the gateway and identity (docs/api.md, ``PATCH /api/v1/me/contact``): phone in E.164,
address, language; a new e-mail is used only after its link is opened, and the old address is told; changing the e-mail
someone logs in with needs a strong login."""

from __future__ import annotations

import re
import uuid

import requests

from klients_identity.models import PasswordLogin
from tests.support.helpers import bearer, mails
from tests.support.oidc_helpers import logged_in_browser
from tests.support.stack import identity_session, wait_until

LOW = "http://eidas.europa.eu/LoA/low"


def test_phone_address_and_language_change_at_once_and_bad_input_changes_nothing(gateway, mint):
    _, person, _ = logged_in_browser()
    token = mint({}, subject=person)
    bad = gateway.patch("/api/v1/me/contact", json={"phone": "123", "language": "de", "role": "owner"},
                        headers=bearer(token))
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} == {"role", "language"}  # the gateway: unknown field, enum
    bad = gateway.patch("/api/v1/me/contact", json={"phone": "123", "language": "de"}, headers=bearer(token))
    assert bad.status_code == 422 and {e["field"] for e in bad.get_json()["errors"]} == {"language"}  # the schema
    bad = gateway.patch("/api/v1/me/contact", json={"phone": "123", "language": "en"}, headers=bearer(token))
    assert bad.status_code == 422 and {e["field"] for e in bad.get_json()["errors"]} == {"phone"}  # identity
    assert gateway.get("/api/v1/me/contact", headers=bearer(token)).get_json()["phone"] is None
    good = gateway.patch("/api/v1/me/contact", json={"phone": "29 123 456", "address": "Skolas iela 1, Rīga",
                                                     "language": "en"}, headers=bearer(token))
    assert good.status_code == 200
    assert (good.get_json()["phone"], good.get_json()["language"]) == ("+37129123456", "en")


def test_new_email_is_used_only_after_its_link_and_the_old_address_is_told(gateway, mint, maildir):
    _, person, _ = logged_in_browser()
    token = mint({}, subject=person)
    first, second = f"a-{uuid.uuid4().hex[:8]}@example.lv", f"b-{uuid.uuid4().hex[:8]}@example.lv"
    for new in (first, second):
        answer = gateway.patch("/api/v1/me/contact", json={"email": new}, headers=bearer(token)).get_json()
        assert answer["email_pending"] == new and answer["email"] != new
        wait_until(f"the link to {new}", lambda n=new: mails(maildir, to=n), timeout=20)
        link = re.search(r"(http://\S+)", mails(maildir, to=new)[0].get_body(("plain",)).get_content()).group(1)
        opened = requests.get(link, timeout=10)
        assert opened.status_code == 200 and 'id="email-confirmed"' in opened.text
        assert gateway.get("/api/v1/me/contact", headers=bearer(token)).get_json()["email"] == new
        assert requests.get(link, timeout=10).status_code == 400  # single use
    def notice() -> list:
        return mails(maildir, to=first, subject="Jūsu e-pasta adrese nomainīta")

    wait_until("the notice to the old address", notice, timeout=20)
    assert second in notice()[0].get_body(("plain",)).get_content()


def test_changing_the_login_email_from_a_weak_session_asks_for_a_strong_login(gateway, mint):
    _, person, _ = logged_in_browser()
    with identity_session() as session:
        session.add(PasswordLogin(email=f"login-{uuid.uuid4().hex[:6]}@example.lv", person_id=person,
                                  password_hash="x"))
    weak = mint({}, subject=person, acr=LOW)
    response = gateway.patch("/api/v1/me/contact", json={"email": "elsewhere@example.lv"}, headers=bearer(weak))
    assert response.status_code == 403
    assert 'insufficient_user_authentication' in response.headers["WWW-Authenticate"]
    assert gateway.get("/api/v1/me/contact", headers=bearer(weak)).get_json()["email_pending"] is None


def test_changing_the_phone_from_a_weak_session_asks_for_a_strong_login(gateway, mint):
    _, person, _ = logged_in_browser()
    with identity_session() as session:
        session.add(PasswordLogin(email=f"login-{uuid.uuid4().hex[:6]}@example.lv", person_id=person,
                                  password_hash="x"))
    weak = mint({}, subject=person, acr=LOW)
    response = gateway.patch("/api/v1/me/contact", json={"phone": "29 123 457"}, headers=bearer(weak))
    assert response.status_code == 403
    assert 'insufficient_user_authentication' in response.headers["WWW-Authenticate"]
    assert gateway.get("/api/v1/me/contact", headers=bearer(weak)).get_json()["phone"] is None
    # the rest of the contact details stay open to a weak session; a strong one changes the phone
    assert gateway.patch("/api/v1/me/contact", json={"language": "en"}, headers=bearer(weak)).status_code == 200
    strong = gateway.patch("/api/v1/me/contact", json={"phone": "29 123 457"}, headers=bearer(mint({}, subject=person)))
    assert strong.status_code == 200 and strong.get_json()["phone"] == "+37129123457"
