"""The portal (backend for frontend) over HTTP: the login's code flow and its error pages, tokens kept on the
server only, CSRF on every form, no open redirect, the security headers, token refresh, session expiry as a
page, logout at identity too, the login start's rate limit, paying once per attempt, the reading answers."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import ISSUER
from tests.support.portal_helpers import (
    JWT,
    PORTAL_URL,
    assert_no_token,
    make_household,
    portal_login,
    row_of,
    secrets_of,
    update_row,
)

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture
def household(new_contract, new_meter, billing_sessions):
    return make_household(new_contract, new_meter, billing_sessions)


def test_login_lands_on_the_overview_and_no_token_ever_reaches_the_browser(household):
    contract, _ = household
    browser, landed = portal_login(((contract, "owner"),))
    assert landed.url == f"{PORTAL_URL}/c/{contract}"
    assert 'id="amount-due"' in landed.text and 'id="quick-actions"' in landed.text
    row = row_of(browser)
    tokens = secrets_of(row)
    assert len(tokens) == 3  # access, refresh, ID token: all on the server
    assert_no_token(landed, tokens)
    for path in ("", "/bills", "/readings", "/consumption", "/pay", "/consumption.csv?group_by=year"):
        answer = browser.get(f"{PORTAL_URL}/c/{contract}{path}", timeout=20)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert_no_token(answer, tokens)
    cookies = [c for c in browser.cookies if c.domain.startswith("127.0.0.1") and c.name == "klients_portal"]
    assert len(cookies) == 1 and cookies[0].has_nonstandard_attr("HttpOnly")
    assert all(token not in cookies[0].value for token in tokens)


def test_pages_carry_a_strict_csp_no_store_and_no_framing(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    for url in (f"{PORTAL_URL}/", f"{PORTAL_URL}/c/{contract}", f"{PORTAL_URL}/c/{contract}/bills"):
        headers = browser.get(url, timeout=20).headers
        csp = headers["Content-Security-Policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Frame-Options"] == "DENY" and headers["Referrer-Policy"] == "same-origin"
    cookie = browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    form = browser.get(f"{PORTAL_URL}/c/{contract}/pay", timeout=20)
    attempt = re.search(r'name="attempt" value="([^"]+)"', form.text).group(1)
    for csrf in (None, "forged"):
        data = {"attempt": attempt, "choice": "due", **({"csrf": csrf} if csrf else {})}
        refused = browser.post(f"{PORTAL_URL}/c/{contract}/pay", data=data, allow_redirects=False, timeout=20)
        assert refused.status_code == 400 and "Veidlapa ir novecojusi" in refused.text
        out = browser.post(f"{PORTAL_URL}/logout", data=data, allow_redirects=False, timeout=20)
        assert out.status_code == 400
    still = browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20)
    assert still.status_code == 200 and 'id="pay"' in still.text  # still logged in, nothing was paid


@pytest.mark.parametrize("target", ["https://evil.example/x", "//evil.example/x", "/\\evil.example", "http:/x",
                                    "javascript:alert(1)", "/%0d%0aSet-Cookie:x=1"])
def test_next_never_leaves_the_portal(target):
    switched = requests.get(f"{PORTAL_URL}/lang/en", params={"next": target}, allow_redirects=False, timeout=10)
    location = switched.headers["Location"]
    assert urlparse(location).netloc in ("", urlparse(PORTAL_URL).netloc) and not location.startswith("//")
    assert "\n" not in location and "evil" not in location
    _, landed = portal_login(next_path=target, status=404 if "%" in target else 200)  # a path of ours, or "/"
    assert landed.url.startswith(PORTAL_URL + "/") and "evil" not in landed.url


def test_a_safe_next_is_where_the_login_ends():
    _, landed = portal_login(next_path="/c/LVG-100001/bills")
    assert landed.url == f"{PORTAL_URL}/c/LVG-100001/bills"


def test_login_errors_are_pages_with_a_next_step():
    browser = requests.Session()
    for error, words in (("access_denied", "Pieslēgšanās netika pabeigta"), ("login_required", "Lūdzu, pieslēdz")):
        started = browser.get(f"{PORTAL_URL}/login", allow_redirects=False, timeout=10)
        assert started.headers["Location"].startswith(f"{ISSUER}/authorize?")
        query = parse_qs(urlparse(started.headers["Location"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["client_id"] == ["klients-portal-web"]
        state = query["state"][0]
        answer = browser.get(f"{PORTAL_URL}/callback", params={"error": error, "state": state, "iss": ISSUER},
                             timeout=10)
        assert answer.status_code == 200 and words in answer.text and 'id="retry"' in answer.text
    stale = browser.get(f"{PORTAL_URL}/callback", params={"code": "x", "state": "not-ours"}, timeout=10)
    assert stale.status_code == 400 and 'id="retry"' in stale.text


def test_the_portal_refreshes_an_expired_access_token_itself(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    before = row_of(browser)
    update_row(browser, access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    answer = browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20)
    assert answer.status_code == 200 and 'id="amount-due"' in answer.text
    after = row_of(browser)
    assert after.access_token != before.access_token and after.refresh_token != before.refresh_token
    assert_no_token(answer, secrets_of(after))


def test_the_session_table_holds_no_token_in_clear_and_an_older_key_still_opens_it(household):
    from sqlalchemy import text

    from tests.support.portal_helpers import cipher, portal_sessions

    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    row = row_of(browser)
    tokens = secrets_of(row)
    assert len(tokens) == 3 and all(JWT.match(t) for t in tokens[::2])  # access and ID token are JWTs
    with portal_sessions()() as db:
        dump = "\n".join(str(tuple(r)) for r in db.execute(text("SELECT * FROM portal_sessions")))
    assert row.id_hash in dump and not JWT.search(dump) and not any(t in dump for t in tokens)
    # Rotation: the row sealed under the older key (second in PORTAL_SESSION_KEY) still opens; a refresh
    # writes it back under the first.
    new_key, old_key = os.environ["PORTAL_SESSION_KEY"].split(",")
    old = cipher(old_key)
    update_row(browser, **{c: old.encrypt(t, row=row.id_hash, column=c)
                           for c, t in zip(("access_token", "refresh_token", "id_token"), tokens, strict=True)})
    assert row_of(browser).access_token.split(".")[0] != row.access_token.split(".")[0]
    assert 'id="amount-due"' in browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20).text
    update_row(browser, access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert 'id="amount-due"' in browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20).text
    rotated = row_of(browser)
    assert rotated.access_token.split(".")[0] == rotated.refresh_token.split(".")[0] == \
        row.access_token.split(".")[0]
    assert cipher(new_key).decrypt(rotated.refresh_token, row=row.id_hash, column="refresh_token")
    # Sealed for one row, a token does not open in another.
    assert cipher().decrypt(rotated.refresh_token, row="another-row", column="refresh_token") is None


def test_an_ended_login_shows_the_session_expired_page_not_an_error(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    browser.get(f"{ISSUER}/logout", timeout=10)  # the login ends at identity (its refresh tokens with it)
    update_row(browser, access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    answer = browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20)
    assert answer.status_code == 401 and 'id="expired"' in answer.text
    assert "klients_portal=" in answer.headers.get("Set-Cookie", "")  # the cookie is cleared
    assert browser.get(f"{PORTAL_URL}/c/{contract}", allow_redirects=False, timeout=20).status_code in (302, 303)


def test_an_idle_session_has_ended(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    update_row(browser, last_seen_at=datetime.now(UTC) - timedelta(hours=1))
    answer = browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20)
    assert answer.status_code == 401 and 'id="expired"' in answer.text


def test_logout_ends_the_session_here_and_the_login_at_identity(household):
    contract, _ = household
    browser, page = portal_login(((contract, "owner"),))
    tokens = secrets_of(row_of(browser))
    refresh_token = tokens[1]  # access, refresh, ID token
    out = browser.post(f"{PORTAL_URL}/logout", data={"csrf": csrf_of(page)}, timeout=20)
    assert_no_token(out, tokens)  # the end-session redirect names the client, not the ID token
    assert out.url.startswith(f"{PORTAL_URL}/") and 'id="login"' in out.text
    assert any(r.url.startswith(f"{ISSUER}/logout") for r in out.history)
    assert row_of(browser) is None
    assert browser.get(f"{PORTAL_URL}/c/{contract}", allow_redirects=False, timeout=20).status_code in (302, 303)
    again = requests.post(f"{ISSUER}/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                          auth=("klients-portal-web", open_secret()), timeout=10)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def open_secret() -> str:
    from klients_portal.settings import client_secret

    return client_secret()


def test_the_login_start_is_rate_limited_per_address():
    from dataclasses import replace

    from klients_portal import create_app
    from klients_portal.settings import Settings

    app = create_app(replace(Settings.from_env(), rate_limit_login="3/minute"))
    client = app.test_client()
    answers = [client.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code for _ in range(4)]
    assert answers == [302, 302, 302, 429]
    assert client.get("/login", environ_base={"REMOTE_ADDR": "198.51.100.8"}).status_code == 302


def test_a_double_click_on_pay_pays_once(household):
    contract, _ = household
    browser, _ = portal_login(((contract, "owner"),))
    form = browser.get(f"{PORTAL_URL}/c/{contract}/pay", timeout=20)
    data = {"csrf": csrf_of(form), "attempt": re.search(r'name="attempt" value="([^"]+)"', form.text).group(1),
            "choice": "due"}
    first = browser.post(f"{PORTAL_URL}/c/{contract}/pay", data=data, allow_redirects=False, timeout=20)
    second = browser.post(f"{PORTAL_URL}/c/{contract}/pay", data=data, allow_redirects=False, timeout=20)
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]  # the same payment at the provider
    bad = browser.post(f"{PORTAL_URL}/c/{contract}/pay", data={**data, "choice": "other", "other": "12,345"},
                       timeout=20)
    assert bad.status_code == 422 and 'id="pay-error"' in bad.text


def test_reading_answers_are_shown_in_words_with_the_confirmation_offered(household):
    contract, meter = household
    browser, _ = portal_login(((contract, "owner"),))
    form = browser.get(f"{PORTAL_URL}/c/{contract}/readings", timeout=20)
    csrf = csrf_of(form)

    def send(value: str, **extra: str) -> requests.Response:
        return browser.post(f"{PORTAL_URL}/c/{contract}/readings",
                            data={"csrf": csrf, "meter": meter, "value": value, **extra}, timeout=20)

    lower = send("5")
    assert lower.status_code == 422 and 'data-code="lower_than_previous"' in lower.text
    assert 'id="confirm-rollover"' in lower.text and "1200" in lower.text
    for value, words in (("12,5", "veselu skaitli"), ("abc", "tikai cipari"), ("-3", "negatīvs")):
        answer = send(value)
        assert answer.status_code == 422 and words in answer.text
    unusual = send("99000")
    assert unusual.status_code == 422 and 'id="confirm-unusual"' in unusual.text
    accepted = send("1290")
    assert accepted.status_code == 200 and 'id="flash"' in accepted.text and "1290" in accepted.text
    bills_only_browser, _ = portal_login(((contract, "subuser", "bills"),))
    page = bills_only_browser.get(f"{PORTAL_URL}/c/{contract}", timeout=20)
    assert 'id="submit-reading"' not in page.text and "/readings" not in page.text
    refused = bills_only_browser.post(f"{PORTAL_URL}/c/{contract}/readings", data={
        "csrf": csrf_of(page), "meter": meter, "value": "1300"}, timeout=20)
    assert refused.status_code in (403, 404)


def test_the_reading_window_is_shown_before_a_reading_is_sent(household):
    from klients_metering.window import WindowRules, window_state

    contract, _ = household
    browser, landed = portal_login(((contract, "owner"),))
    # The suite opens the window on today's date (Riga): open now, until the day before its exclusive end.
    state = window_state(WindowRules(open_day=int(os.environ["READING_WINDOW_OPEN_DAY"])), datetime.now(UTC))
    last_day = (datetime.fromisoformat(state["closes"]) - timedelta(seconds=1)).strftime("%d.%m.%Y")
    for answer in (landed, browser.get(f"{PORTAL_URL}/c/{contract}/readings", timeout=20)):
        window = re.search(r'id="reading-window" data-open="(\w+)">([^<]+)<', answer.text)
        assert window, answer.text[:500]
        assert window.group(1) == "true" and f"līdz {last_day}" in window.group(2)
    _, page = portal_login(((contract, "subuser", "bills"),))
    assert 'id="reading-window"' not in page.text and 'id="amount-due"' in page.text


def test_the_persons_language_is_used_after_login_and_the_switch_is_on_every_page(household):
    from klients_identity.models import Person
    from tests.support.oidc_helpers import logged_in_browser
    from tests.support.stack import identity_session

    contract, _ = household
    browser, person_id, _ = logged_in_browser(grants=((contract, "owner"),))
    with identity_session() as session:
        session.get(Person, person_id).language = "en"
    landed = browser.get(f"{PORTAL_URL}/login", timeout=20)
    assert '<html lang="en">' in landed.text and "Amount to pay" in landed.text
    for path in ("", "/bills", "/readings", "/consumption"):
        answer = browser.get(f"{PORTAL_URL}/c/{contract}{path}", timeout=20)
        assert f'id="lang-switch" href="/lang/lv?next=/c/{contract}{path}"' in answer.text
    switched = browser.get(f"{PORTAL_URL}/lang/lv", params={"next": f"/c/{contract}/bills"}, timeout=20)
    assert switched.url == f"{PORTAL_URL}/c/{contract}/bills" and '<html lang="lv">' in switched.text
