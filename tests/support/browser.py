"""A real browser for the tests (Debian's Chromium driven by Playwright), a stand-in portal callback page,
the two steps of a portal login (start the authorization request, exchange the code it ends with), and an
invitation taken up at identity's pages with the bank simulator."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from klients_common.auth import TokenVerifier, TrustedIssuer
from tests.support.access_helpers import PASSWORD
from tests.support.oidc_helpers import ISSUER, PORTAL, REDIRECT, exchange, pkce

CHROMIUM = "/usr/bin/chromium"  # Debian's package; `make test` installs it (deploy/test-services.sh)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """One Chromium for the whole run (a context per test keeps tests apart)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def portal() -> Iterator[None]:
    """A stand-in for the portal's callback page, so the browser lands somewhere real."""

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"<h1>portal</h1>")

        def log_message(self, *args: Any) -> None:
            pass

    host, port = urlparse(REDIRECT).netloc.split(":")
    server = ThreadingHTTPServer((host, int(port)), Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(chromium: Browser, portal: None) -> Iterator[Page]:
    """A fresh browser context (no cookies) in Latvian."""
    context = chromium.new_context(locale="lv-LV")
    page = context.new_page()
    yield page
    context.close()


def start_login(page: Page) -> str:
    """Send the browser to identity's authorization endpoint as the portal does; return the PKCE verifier."""
    verifier, challenge = pkce()
    page.goto(f"{ISSUER}/authorize?" + urlencode({
        "client_id": PORTAL, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
        "state": "browser-state", "code_challenge": challenge, "code_challenge_method": "S256", "ui_locales": "lv"}))
    return verifier


def tokens_at_callback(page: Page, verifier: str) -> dict[str, Any]:
    """Wait for the portal's callback, exchange its code; return the raw answer and the verified token."""
    page.wait_for_url(f"{REDIRECT}*", timeout=20_000)
    params = {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}
    assert params["state"] == "browser-state" and params["iss"] == ISSUER
    response = exchange(params["code"], verifier)
    assert response.status_code == 200, response.text
    verifier_ = TokenVerifier([TrustedIssuer(ISSUER, f"{ISSUER}/jwks.json", "klients-api")])
    return {"raw": response.json(), "access": verifier_.verify(response.json()["access_token"])}


def shot(shown: Page, name: str) -> None:
    """Save a screenshot for the docs when asked to."""
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        target = Path(folder) / f"{name}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shown.screenshot(path=str(target), full_page=True)


def take_up_with_the_bank(page: Page, phone: str, *, personal_code: str = "320000-00008",
                          contact_shot: str | None = None) -> None:
    """Take up the invitation open in ``page`` as the invitee does: set a password (``PASSWORD``), confirm
    identity at the bank simulator's Swedbank as ``personal_code``, give ``phone`` on the contact form (its
    picture saved as ``contact_shot``), finish, and wait for identity to show the person signed in."""
    page.get_by_label("Jaunā parole").fill(PASSWORD)
    page.get_by_label("Atkārtojiet paroli").fill(PASSWORD)
    page.get_by_role("button", name="Turpināt uz identitātes apstiprināšanu").click()
    page.get_by_role("link", name="Internetbanka").click()
    page.locator("#bank-swedbank").click()
    page.locator(f"input[name=person][value='{personal_code}']").check()
    page.locator("button[value=confirm]").click()
    page.get_by_label("Tālrunis").fill(phone)
    if contact_shot:
        shot(page, contact_shot)
    page.get_by_role("button", name="Pabeigt").click()
    page.get_by_text("Jūs esat pieslēdzies.").wait_for()
