"""Every portal page, in Latvian and English, checked with axe-core (injected by Playwright: the page's own
CSP allows no inline script, so it is evaluated through the browser's debugging channel) against the WCAG
2.1 A and AA rules: no violations."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import shot
from tests.support.oidc_helpers import logged_in_browser
from tests.support.portal_helpers import PORTAL_URL, make_household

pytestmark = pytest.mark.usefixtures("stack")
AXE = Path(__file__).resolve().parents[1] / "var" / "test-node" / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Page) -> list[str]:
    """The WCAG 2.1 A/AA violations axe finds on the page (rule: the first offending element)."""
    page.evaluate(AXE.read_text())
    found = page.evaluate("async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}}))"
                          ".violations.map(v => v.id + ': ' + v.nodes[0].html)", RULES)
    return list(found)


@pytest.fixture
def signed_in(chromium: Browser, new_contract, new_meter, billing_sessions):
    contract, _ = make_household(new_contract, new_meter, billing_sessions)
    browser, _, _ = logged_in_browser(grants=((contract, "owner"),))
    context = chromium.new_context(locale="lv-LV")
    context.add_cookies([{"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": "/"}
                         for c in browser.cookies])
    page = context.new_page()
    page.goto(f"{PORTAL_URL}/login")
    page.wait_for_url(f"{PORTAL_URL}/c/{contract}")
    yield page, contract
    context.close()


def test_every_page_has_no_wcag_violations_in_either_language(signed_in, chromium):
    page, contract = signed_in
    invoice = None
    found: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for lang in ("lv", "en"):
        page.goto(f"{PORTAL_URL}/lang/{lang}?next=/c/{contract}")
        paths = ["/contracts", f"/c/{contract}", f"/c/{contract}/bills", f"/c/{contract}/pay",
                 f"/c/{contract}/readings", f"/c/{contract}/consumption", f"/c/{contract}/users",
                 f"/c/{contract}/activity", "/contact", "/no-such-page"]
        if invoice is None:
            page.goto(f"{PORTAL_URL}/c/{contract}/bills")
            invoice = page.locator("#invoices tbody a").first.get_attribute("href")
        for path in [*paths, invoice]:
            page.goto(f"{PORTAL_URL}{path}")
            found[f"{lang} {path}"] = violations(page)
            titles[f"{lang} {path}"] = page.title()
            name = path.strip("/").replace(f"c/{contract}", "contract").replace("/", "-")
            name = "invoice" if path == invoice else name
            shot(page, f"portal/{name}-{lang}")
        page.goto(f"{PORTAL_URL}/c/{contract}/readings")
        page.locator("input[name=value]").first.fill("5")  # an answer in words, with its confirmation button
        page.locator("button.send-reading").first.click()
        found[f"{lang} reading answer"] = violations(page)
    anonymous = chromium.new_context(locale="lv-LV").new_page()
    for path in ("/", "/lang/en?next=/"):
        anonymous.goto(f"{PORTAL_URL}{path}")
        found[f"start {path}"] = violations(anonymous)
    anonymous.evaluate("document.body.appendChild(document.createElement('img')).src = '/static/portal.css'")
    assert any(rule.startswith("image-alt") for rule in violations(anonymous))  # the check does find faults
    anonymous.context.close()
    assert {where: rules for where, rules in found.items() if rules} == {}
    # A page's title is words only (a block left open in a template once put a whole form into one).
    assert {where: title for where, title in titles.items() if "<" in title or len(title) > 120} == {}
