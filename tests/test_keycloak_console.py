"""What an operator sees in the real Keycloak admin console (Chromium): the staff realm's operators with
their roles, and a brokered portal user with the grants identity keeps in step. With ``SCREENSHOTS_DIR``
set (``make screenshots``) the pages are saved for docs/operators.md."""

from __future__ import annotations

import re

from playwright.sync_api import Page

from tests.support.browser import shot
from tests.support.keycloak import KEYCLOAK, PORTAL, brokered_login, person_id


def console_login(page: Page) -> None:
    page.goto(f"{KEYCLOAK}/admin/master/console/")
    page.locator("#username").fill("admin")
    page.locator("#password").fill("admin")
    page.locator("#kc-login").click()
    page.wait_for_url(re.compile(r".*/admin/master/console/.*"), timeout=60_000)


def test_the_console_shows_a_brokered_user_with_the_grants_identity_keeps(chromium, fronted, new_contract):
    contract = new_contract(personal_code="050405-10009").number
    brokered_login()
    user_id = fronted.get_user_id(person_id())
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    page = context.new_page()
    try:
        console_login(page)
        page.goto(f"{KEYCLOAK}/admin/master/console/#/{PORTAL.realm}/users/{user_id}/settings")
        page.get_by_text("Grants (from identity)").first.wait_for(timeout=60_000)
        field = page.get_by_label("Grants (from identity)")
        assert contract in field.input_value()  # the console shows what identity wrote
        shot(page, "keycloak-portal-user")
        page.goto(f"{KEYCLOAK}/admin/master/console/#/{PORTAL.realm}/users")
        page.get_by_role("button", name="View all users").or_(page.get_by_text(person_id())).first.wait_for(
            timeout=60_000)  # the console's user list loads slowly while the whole suite runs
        shot(page, "keycloak-portal-users")
    finally:
        context.close()
