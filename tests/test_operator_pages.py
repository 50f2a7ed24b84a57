"""Identity's operator pages with operators signed in through the real Keycloak staff realm (docs/access.md,
"Operator pages"): record an application with its attachment, see the register
beside it, approve (the delegate is invited and activates with a matching strong login, then manages
users) or reject; supervisor-only approvals; attachments checked by content and shown to operators only;
revoking from the contract page."""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from klients_common.riga import riga_today
from klients_identity.models import Application, Attachment, Grant
from tests.support.access_helpers import (
    PDF,
    application_id,
    invitation_link,
    now,
    open_and_set_password,
    record,
    smartid_login,
    unique_email,
)
from tests.support.helpers import bearer, csrf_of
from tests.support.keycloak import operator_browser
from tests.support.oidc_helpers import ISSUER, code_for, exchange, pkce
from tests.support.stack import identity_session


def applications_on(contract: str) -> int:
    with identity_session() as session:
        return session.scalar(select(func.count()).select_from(Application).where(Application.contract == contract))


def test_an_approved_delegate_is_invited_activates_and_manages_users(staff, new_contract, maildir, gateway):
    contract = new_contract(holder_name="Ilga Turētāja").number
    operator = operator_browser()
    email = unique_email("delegate")
    recorded = record(operator, contract, email=email)
    assert recorded.status_code == 200 and 'id="holder-name">Ilga Turētāja' in recorded.text
    attachment = operator.get(f"{ISSUER}/operator/applications/{application_id(recorded)}/attachment", timeout=10)
    assert attachment.content == PDF and attachment.headers["Content-Disposition"].startswith("attachment;")
    assert attachment.headers["X-Content-Type-Options"] == "nosniff"
    started = now()
    approved = operator.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                             data={"csrf": csrf_of(recorded)}, timeout=10)
    assert approved.status_code == 200 and 'id="application-status">(apstiprināts)' in approved.text
    link = invitation_link(maildir, email, after=started)

    delegate, chosen = open_and_set_password(link)
    assert chosen.status_code == 303  # a delegate chooses no password: straight on to the strong login (303: a POST)
    contact = smartid_login(delegate, "050405-10009")
    done = delegate.post(f"{ISSUER}/invite/contact", data={"csrf": csrf_of(contact)}, timeout=10)
    assert done.status_code == 200
    verifier, challenge = pkce()
    tokens = exchange(code_for(delegate, (verifier, challenge)), verifier).json()
    token = tokens["access_token"]
    me = gateway.get("/api/v1/me", headers=bearer(token)).get_json()
    mine = next(g for g in me["grants"] if g["contract"] == contract)
    assert mine["role"] == "delegate" and "users:manage" in mine["rights"] and mine["until"]
    added = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token),
                         json={"name": "Sub Lietotājs", "email": unique_email(), "level": "bills"})
    assert added.status_code == 201
    users = gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(token)).get_json()["items"]
    assert {(u["role"], u["status"]) for u in users} >= {("delegate", "active"), ("subuser", "invited")}

    # The operator ends the mandate from the contract page: the delegate's token stops working at once.
    page = operator.get(f"{ISSUER}/operator/contracts/{contract}", timeout=10)
    grant = next(u["id"] for u in users if u["role"] == "delegate")
    revoked = operator.post(f"{ISSUER}/operator/contracts/{contract}/users/{grant}/revoke",
                            data={"csrf": csrf_of(page), "reason": "mandate withdrawn by the holder"}, timeout=10)
    assert revoked.status_code == 200
    with identity_session() as session:
        row = session.get(Grant, grant)
        assert (row.status, row.ended_by, row.end_reason) == ("revoked", "operator:operator",
                                                              "mandate withdrawn by the holder")
    deadline = time.monotonic() + 2
    while gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(token)).status_code != 404:
        assert time.monotonic() < deadline, "the revoked delegate's token still works"
        time.sleep(0.1)


def test_a_person_without_the_operator_role_is_refused(staff, new_contract):
    contract = new_contract().number
    browser = operator_browser("norole")
    assert browser.get(f"{ISSUER}/operator/", timeout=10).status_code == 403
    form = browser.get(f"{ISSUER}/operator/applications/new", timeout=10)
    assert form.status_code == 403
    assert applications_on(contract) == 0


def test_nobody_but_a_signed_in_operator_reaches_the_pages_or_attachments(staff, new_contract):
    contract = new_contract().number
    recorded = record(operator_browser(), contract)
    url = f"{ISSUER}/operator/applications/{application_id(recorded)}/attachment"
    anonymous = requests.get(url, timeout=10, allow_redirects=False)
    assert anonymous.status_code == 302 and "/operator/login" in anonymous.headers["Location"]
    from tests.support.oidc_helpers import logged_in_browser

    client, _, _ = logged_in_browser(grants=((contract, "owner"),))  # a portal login is not a staff login
    assert client.get(url, timeout=10, allow_redirects=False).status_code == 302


def test_a_mandate_over_a_year_needs_a_supervisor(staff, new_contract):
    contract = new_contract().number
    long_mandate = (riga_today() + timedelta(days=800)).isoformat()
    operator = operator_browser()
    recorded = record(operator, contract, valid_until=long_mandate)
    assert 'id="supervisor-note"' in recorded.text
    refused = operator.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                            data={"csrf": csrf_of(recorded)}, timeout=10)
    assert refused.status_code == 403 and "supervisor" in refused.text
    with identity_session() as session:
        assert session.get(Application, application_id(recorded)).status == "recorded"
        assert session.scalar(select(func.count()).select_from(Grant).where(Grant.contract == contract)) == 0
    supervisor = operator_browser("supervisor")
    page = supervisor.get(recorded.url, timeout=10)
    approved = supervisor.post(f"{ISSUER}/operator/applications/{application_id(recorded)}/approve",
                               data={"csrf": csrf_of(page)}, timeout=10)
    assert approved.status_code == 200 and "(apstiprināts)" in approved.text


@pytest.mark.parametrize(("attachment", "status", "words"), [
    (("big.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 10), "application/pdf"), 413, "10 MB"),
    (("page.pdf", b"<!doctype html><script>alert(1)</script>", "application/pdf"), 422, "PDF, JPEG vai PNG"),
    (("photo.png", b"GIF89a......", "image/png"), 422, "PDF, JPEG vai PNG"),
    (("empty.pdf", b"", "application/pdf"), 422, "Pievienojiet"),
])
def test_attachments_are_checked_by_content_and_size(staff, new_contract, attachment, status, words):
    contract = new_contract().number
    refused = record(operator_browser(), contract, attachment=attachment)
    assert refused.status_code == status and words in refused.text
    assert applications_on(contract) == 0


def test_bad_application_fields_are_listed_and_nothing_is_recorded(staff, new_contract):
    contract = new_contract().number
    operator = operator_browser()
    scan = b"%PDF-1.4\n% " + uuid.uuid4().hex.encode()  # content of this test's own
    refused = record(operator, contract, personal_code="010111-22341", email="nope", valid_until="",
                     attachment=("scan.pdf", scan, "application/pdf"))
    assert refused.status_code == 422
    with identity_session() as session:  # the file of a refused application is not kept either
        assert session.get(Attachment, hashlib.sha256(scan).hexdigest()) is None
    for field in ("personal_code-error", "email-error", "valid_until-error"):
        assert f'id="{field}"' in refused.text
    unknown = record(operator, f"NO-{uuid.uuid4().hex[:6]}")
    assert unknown.status_code == 422 and 'id="contract-error"' in unknown.text
    assert applications_on(contract) == 0


def test_rejection_needs_a_reason_and_a_decision_is_final(staff, new_contract):
    contract = new_contract().number
    operator = operator_browser()
    recorded = record(operator, contract)
    app_url = f"{ISSUER}/operator/applications/{application_id(recorded)}"
    no_reason = operator.post(f"{app_url}/reject", data={"csrf": csrf_of(recorded), "reason": " "}, timeout=10)
    assert 'id="error-message"' in no_reason.text
    rejected = operator.post(f"{app_url}/reject", data={"csrf": csrf_of(recorded), "reason": "holder did not sign"},
                             timeout=10)
    assert "(noraidīts)" in rejected.text and "holder did not sign" in rejected.text
    again = operator.post(f"{app_url}/approve", data={"csrf": csrf_of(recorded)}, timeout=10)
    assert again.status_code == 409
    with identity_session() as session:
        assert session.scalar(select(func.count()).select_from(Grant).where(Grant.contract == contract)) == 0


def test_an_operator_adds_an_additional_user_from_a_paper_application(staff, new_contract, maildir):
    contract = new_contract().number
    operator = operator_browser()
    email = unique_email("paper-sub")
    recorded = record(operator, contract, kind="subuser", level="bills", personal_code="", valid_until="",
                      email=email)
    assert recorded.status_code == 200, recorded.text[:300]
    started = now()
    operator.post(f"{recorded.url}/approve", data={"csrf": csrf_of(recorded)}, timeout=10)
    assert invitation_link(maildir, email, after=started)
    with identity_session() as session:
        grant = session.scalar(select(Grant).where(Grant.contract == contract))
        assert (grant.role, grant.level, grant.status, grant.created_by) == ("subuser", "bills", "invited",
                                                                             "operator:operator")
