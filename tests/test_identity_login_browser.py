"""A real browser (Debian's Chromium driven by Playwright) logs in end to end through each method against its
simulator and lands back at the client with tokens whose claims are right; failures show a clear page and
leave no session."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.support.browser import start_login, tokens_at_callback
from tests.support.oidc_helpers import ISSUER, PORTAL, REDIRECT, pkce

pytestmark = pytest.mark.usefixtures("stack")


def test_smart_id_login_with_the_verification_code(page):
    verifier = start_login(page)
    page.get_by_role("link", name="Smart-ID").click()
    page.get_by_label("Personas kods").fill("040404-10003")
    page.keyboard.press("Enter")
    code = page.locator("#verification-code")
    code.wait_for(timeout=10_000)
    assert code.inner_text().isdigit() and len(code.inner_text()) == 4
    token = tokens_at_callback(page, verifier)["access"]
    assert token.grants["LVG-100001"].role == "owner"
    assert token.claims["acr"] == "http://eidas.europa.eu/LoA/substantial"
    assert token.claims["amr"] == ["smartid"]


def test_eparaksts_login(page):
    verifier = start_login(page)
    page.get_by_role("link", name="eParaksts").click()
    page.locator("input[name=person][value='PNOLV-010180-15097']").check()
    page.locator("button[value=confirm]").click()
    token = tokens_at_callback(page, verifier)["access"]
    assert token.grants["LVG-100003"].role == "owner"
    assert token.claims["acr"] == "http://eidas.europa.eu/LoA/high"


@pytest.mark.parametrize("bank", ["swedbank", "seb"])
def test_internet_bank_login(page, bank):
    verifier = start_login(page)
    page.get_by_role("link", name="Internetbanka").click()
    page.locator(f"#bank-{bank}").click()
    page.locator("input[name=person][value='374042-80367']").check()
    page.locator("button[value=confirm]").click()
    token = tokens_at_callback(page, verifier)["access"]
    assert token.grants["LVG-100004"].role == "owner"
    assert token.claims["amr"] == [f"bank:{bank}"]


def test_smart_id_refusal_returns_access_denied_to_the_client_and_signs_nobody_in(page):
    start_login(page)
    page.get_by_role("link", name="Smart-ID").click()
    page.get_by_label("Personas kods").fill("030403-10016")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{REDIRECT}*", timeout=15_000)  # the person refused: the client hears so at once
    assert "error=access_denied" in page.url
    page.goto(f"{ISSUER}/authorize?" + urlencode({
        "client_id": PORTAL, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid",
        "code_challenge": pkce()[1], "code_challenge_method": "S256", "prompt": "none", "state": "s"}))
    page.wait_for_url(f"{REDIRECT}*")
    assert "error=login_required" in page.url


def test_person_without_a_contract_is_told_about_the_transfer(page):
    start_login(page)
    page.get_by_role("link", name="eParaksts").click()
    page.locator("input[name=person][value='PNOLV-161175-19997']").check()
    page.locator("button[value=confirm]").click()
    page.locator("#error-message").wait_for(timeout=10_000)
    assert "pārslēdz" in page.locator("#error-message").inner_text()
    assert not page.url.startswith(REDIRECT)


def test_email_registration_and_login(page, chromium, maildir):
    import re
    import time

    from tests.support.helpers import mails
    from tests.support.stack import wait_until

    address = "new.format@demo.klients.lv"  # the register's e-mail for LVG-100002
    started = time.time()
    page.goto(f"{ISSUER}/login/email/register?lang=lv")
    page.get_by_label("E-pasts / E-mail").fill(address)
    page.get_by_label("Līguma numurs").fill("LVG-100002")
    page.get_by_role("button", name="Sūtīt saiti").click()
    page.locator("#sent").wait_for()

    def sent():
        return mails(maildir, to=address, subject="Apstipriniet e-pastu Klients portālā", after=started)

    wait_until("the registration e-mail", sent, timeout=20)
    page.goto(re.search(r"(http://\S+)", sent()[0].get_body(("plain",)).get_content()).group(1))
    page.get_by_label("Jaunā parole").fill("Dzintars-Jūrmalā-7")
    page.get_by_label("Atkārtojiet paroli").fill("Dzintars-Jūrmalā-7")
    page.get_by_role("button", name="Saglabāt").click()
    page.locator("#signed-in").wait_for()

    context = chromium.new_context(locale="lv-LV")
    fresh = context.new_page()
    try:
        verifier = start_login(fresh)
        fresh.get_by_role("link", name="E-pasts un parole").click()
        fresh.get_by_label("E-pasts / E-mail").fill(address)
        fresh.get_by_label("Parole").fill("Dzintars-Jūrmalā-7")
        fresh.get_by_role("button", name="Pieslēgties").click()
        token = tokens_at_callback(fresh, verifier)["access"]
    finally:
        context.close()
    assert token.grants["LVG-100002"].role == "owner"
    assert token.claims["acr"] == "http://eidas.europa.eu/LoA/low" and token.claims["amr"] == ["pwd"]
