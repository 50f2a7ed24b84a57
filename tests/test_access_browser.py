"""The access journeys (docs/access.md) in a real browser (Debian's Chromium via Playwright), against the real system:

1. The holder invites an additional user; the invitation e-mail arrives at the SMTP server; the invitee
   opens it, sets a password, authenticates at the bank simulator, fills in the contact form, then logs in
   again with e-mail + password and sees only what the level allows.
2. An operator signs in through Keycloak, records a delegate's application with its scan and approves it;
   the delegate opens the invitation, confirms with eParaksts and, as the contract's main portal user,
   manages its users.

With ``SCREENSHOTS_DIR`` set (``make screenshots``), the pages are saved there for the operator guide.
"""

from __future__ import annotations

import time
from datetime import timedelta

from klients_common.riga import riga_today
from tests.support.access_helpers import PASSWORD, PDF, invitation_link, now, plant_person, unique_email
from tests.support.browser import shot, start_login, take_up_with_the_bank, tokens_at_callback
from tests.support.helpers import bearer
from tests.support.keycloak import STAFF
from tests.support.oidc_helpers import ISSUER

SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"


def test_an_additional_user_is_invited_activates_with_the_bank_and_sees_only_bills(
        page, chromium, new_contract, gateway, mint, maildir):
    contract = new_contract().number
    holder, _ = plant_person(contract, email=unique_email("holder"))
    owner = mint({contract: "owner"}, subject=holder, acr=SUBSTANTIAL, auth_time=int(time.time()))
    email = unique_email("additional")
    started = now()
    assert gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(owner), json={
        "name": "Ģirts Čakste", "email": email, "level": "bills", "personal_code": "320000-00008"}).status_code == 201
    link = invitation_link(maildir, email, after=started)

    page.goto(link)
    assert "Jūs varēsiet skatīt un apmaksāt rēķinus." in page.locator("#invite-text").inner_text()
    shot(page, "invitation")
    take_up_with_the_bank(page, "+371 20 000 002", contact_shot="invitation-contact")

    # Later, from a fresh browser: e-mail + password, and only the bills level.
    fresh = chromium.new_context(locale="lv-LV").new_page()
    verifier = start_login(fresh)
    fresh.get_by_role("link", name="E-pasts un parole").click()
    fresh.get_by_label("E-pasts / E-mail").fill(email)
    fresh.get_by_label("Parole").fill(PASSWORD)
    fresh.get_by_role("button", name="Pieslēgties").click()
    token = tokens_at_callback(fresh, verifier)
    grant = token["access"].grants[contract]
    assert grant.role == "subuser" and {str(r) for r in grant.rights} == {"bills:read", "bills:pay"}
    access_token = token["raw"]["access_token"]
    assert gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(access_token)).status_code == 200
    meters = gateway.get(f"/api/v1/contracts/{contract}/meters", headers=bearer(access_token))
    assert meters.status_code == 403 and meters.get_json()["missing_right"] == "meters:read"
    assert gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(access_token)).status_code == 403
    fresh.context.close()


def test_a_delegate_approved_by_an_operator_signed_in_through_keycloak_manages_users(
        page, chromium, staff, new_contract, gateway, maildir, tmp_path):
    contract = new_contract(holder_name="Ilga Turētāja").number
    email = unique_email("delegate")

    # The operator, signed in at Keycloak's staff realm.
    page.goto(f"{ISSUER}/operator/")
    page.locator("#username").fill("operator")
    page.locator("#password").fill(STAFF.demo_password)
    page.locator("#kc-login").click()
    page.locator("#operator-name").wait_for()
    shot(page, "operator-home")
    page.get_by_role("link", name="Reģistrēt iesniegumu").click()
    page.get_by_label("Līgums").fill(contract)
    page.get_by_label("Vārds, uzvārds").fill("Laura Ozoliņa")
    page.get_by_label("Personas kods").fill("320000-00008")
    page.get_by_label("E-pasts").fill(email)
    page.get_by_label("Derīgs līdz").fill((riga_today() + timedelta(days=300)).isoformat())
    scan = tmp_path / "pilnvara.pdf"
    scan.write_bytes(PDF)
    page.locator("#attachment").set_input_files(str(scan))
    shot(page, "operator-new-application")
    started = now()
    page.get_by_role("button", name="Saglabāt").click()
    assert page.locator("#holder-name").inner_text() == "Ilga Turētāja"
    shot(page, "operator-application")
    page.locator("#approve").click()
    assert page.locator("#application-status").inner_text() == "(apstiprināts)"
    link = invitation_link(maildir, email, after=started)

    # The delegate, in a browser of their own.
    delegate = chromium.new_context(locale="lv-LV").new_page()
    delegate.goto(link)
    assert "pilnvarotā persona" in delegate.locator("#invite-text").inner_text()
    delegate.get_by_role("button", name="Turpināt uz identitātes apstiprināšanu").click()
    delegate.get_by_role("link", name="eParaksts").click()
    delegate.locator("input[name=person][value='PNOLV-320000-00008']").check()
    delegate.locator("button[value=confirm]").click()
    delegate.get_by_role("button", name="Pabeigt").click()
    delegate.get_by_text("Jūs esat pieslēdzies.").wait_for()
    verifier = start_login(delegate)  # the portal's login: the identity session is already there
    token = tokens_at_callback(delegate, verifier)
    assert token["access"].grants[contract].role == "delegate"
    access_token = token["raw"]["access_token"]
    added = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(access_token),
                         json={"name": "Papildu Lietotājs", "email": unique_email(), "level": "bills_readings"})
    assert added.status_code == 201
    delegate.context.close()

    page.goto(f"{ISSUER}/operator/contracts/{contract}")
    assert page.locator("#users .status").all_inner_texts() == ["aktīvs", "uzaicināts"]  # Latvian page, Latvian words
    shot(page, "operator-contract")
