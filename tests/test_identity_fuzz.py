"""Property-based fuzz of identity's query and form parameters over HTTP (hypothesis): whatever a client or an
attacker sends to the OpenID Connect endpoints and the login pages' forms, the answer is never a 500, and a
value sent never comes back unescaped in an HTML page. About 30 s in all."""

from __future__ import annotations

import random
from html import escape

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.helpers import csrf_of
from tests.support.oidc_helpers import ISSUER, PORTAL, REDIRECT, logged_in_browser, pkce

pytestmark = pytest.mark.usefixtures("stack")

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
PAGES_FUZZ = settings(FUZZ, max_examples=60)  # 14 requests an example

# Any text (quotes, backslashes, markup, control characters, any plane), and values that look like markup.
ANY = st.text(max_size=60)
MARKUP = st.builds(lambda a, b: f'{a}"><zq{b}>\\', st.text(max_size=10), st.text(alphabet="abcdefgh", max_size=5))
PUNCT = st.text(alphabet="\"\\<>'&%#?=;:/+ \x7fcodeā€", max_size=12)  # what breaks quoting, escaping, encodings
VALUE = st.one_of(ANY, MARKUP, PUNCT, st.sampled_from(["code", "openid", PORTAL, REDIRECT, "none", "login", "0", "-1",
                                                "S256", "plain", "²", "\x00", "%", "%zz", "'", '"', "\\"]))

AUTHORIZE_KEYS = ["client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge",
                  "code_challenge_method", "prompt", "max_age", "acr_values", "login_hint", "ui_locales",
                  "id_token_hint", "display", "claims", "request", "request_uri", "response_mode", "resource"]
TOKEN_KEYS = ["grant_type", "code", "redirect_uri", "client_id", "client_secret", "code_verifier",
              "refresh_token", "scope", "resource"]


def params(keys: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.one_of(st.sampled_from(keys), ANY), VALUE, max_size=8)


def address() -> dict[str, str]:
    """Each example from its own client address: the login rate limit must not hide what is behind it."""
    return {"X-Forwarded-For": f"198.18.{random.randrange(256)}.{random.randrange(1, 255)}"}


def check(response: requests.Response, sent: dict[str, str]) -> None:
    assert response.status_code < 500, (sent, response.status_code, response.text[:500])
    if "text/html" in response.headers.get("Content-Type", ""):
        for value in sent.values():
            # Markup a page could not hold by chance: the strategy's own marker, or a long value with a tag start.
            if isinstance(value, str) and escape(value, quote=True) != value \
                    and ("<zq" in value or (len(value) >= 8 and "<" in value)):
                assert value not in response.text, (value, response.text[:800])


@pytest.fixture(scope="module")
def browser(stack) -> requests.Session:
    return logged_in_browser()[0]


@FUZZ
@given(query=params(AUTHORIZE_KEYS), logged_in=st.booleans(), post=st.booleans())
def test_authorize_never_fails_on_any_parameters(browser, query, logged_in, post):
    base = {"client_id": PORTAL, "redirect_uri": REDIRECT, "response_type": "code", "code_challenge": pkce()[1],
            "code_challenge_method": "S256", "scope": "openid"}
    sent = {**base, **query}
    who = browser if logged_in else requests.Session()
    if post:
        response = who.post(f"{ISSUER}/authorize", data=sent, allow_redirects=False, timeout=10)
        check(response, sent)
        if response.status_code == 303 and response.headers["Location"].startswith("/authorize"):
            response = who.get(f"{ISSUER}{response.headers['Location']}", allow_redirects=False, timeout=10)
    else:
        response = who.get(f"{ISSUER}/authorize", params=sent, allow_redirects=False, timeout=10)
    check(response, sent)


@FUZZ
@given(form=params(TOKEN_KEYS), basic=st.one_of(st.none(), st.tuples(ANY, ANY)))
def test_token_revoke_and_introspect_never_fail(form, basic):
    for endpoint in ("token", "revoke", "introspect"):
        auth = None
        if basic is not None:
            auth = tuple(v.encode("utf-8", "surrogatepass") for v in basic)
        check(requests.post(f"{ISSUER}/{endpoint}", data=form, auth=auth, headers=address(), timeout=10), form)


HEADER = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), max_size=60).map(str.strip)


@FUZZ
@given(header=st.one_of(HEADER, HEADER.map(lambda v: f"Bearer {v}")), form=params(["access_token", "scope"]))
def test_userinfo_never_fails(header, form):
    sent = {**form, "header": header}
    headers = {"Authorization": header.encode("utf-8", "surrogatepass")}
    check(requests.get(f"{ISSUER}/userinfo", headers=headers, timeout=10), sent)
    check(requests.post(f"{ISSUER}/userinfo", data=form, headers=headers, timeout=10), sent)


@FUZZ
@given(query=params(["id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"]))
def test_logout_never_fails(query):
    check(requests.get(f"{ISSUER}/logout", params=query, allow_redirects=False, timeout=10), query)
    check(requests.post(f"{ISSUER}/logout", data=query, allow_redirects=False, timeout=10), query)


@pytest.fixture(scope="module")
def page_browser(stack) -> tuple[requests.Session, str]:
    session = requests.Session()
    return session, csrf_of(session.get(f"{ISSUER}/login/smart-id", timeout=10))


@PAGES_FUZZ
@given(form=params(["personal_code", "flow", "csrf", "email", "password", "password2", "contract", "r", "lang",
                    "hint", "strong", "state", "code", "error", "error_description"]),
       with_csrf=st.booleans())
def test_login_pages_never_fail_on_any_form_or_query(page_browser, form, with_csrf):
    browser, csrf = page_browser
    sent = {**form, "csrf": csrf} if with_csrf else form
    for path in ("/login/smart-id", "/login/bank/swedbank", "/login/bank/nobank", "/login/cancel",
                 "/login/email", "/login/email/register", "/login/email/forgot", "/login/email/password"):
        check(browser.post(f"{ISSUER}{path}", data=sent, headers=address(), allow_redirects=False, timeout=10),
              sent)
    for path in ("/login", "/login/smart-id", "/login/smart-id/wait", "/login/eparaksts/callback", "/login/bank",
                 "/login/bank/swedbank/done", "/login/bank/swedbank/return"):
        check(browser.get(f"{ISSUER}{path}", params=form, headers=address(), allow_redirects=False, timeout=10),
              form)


def test_a_nul_character_anywhere_is_a_400_not_a_500():
    """What the fuzz found first: PostgreSQL refuses NUL in text, so a lookup with one failed with a 500."""
    nul = "a\x00b"
    answers = {
        "token form": requests.post(f"{ISSUER}/token", data={"grant_type": "authorization_code", "client_id": nul,
                                                             "code": "x"}, timeout=10),
        "revoke basic": requests.post(f"{ISSUER}/revoke", data={"token": "x"}, auth=(nul, "s"), timeout=10),
        "introspect basic": requests.post(f"{ISSUER}/introspect", data={"token": "x"}, auth=(nul, "s"), timeout=10),
        "logout": requests.get(f"{ISSUER}/logout", params={"client_id": nul}, allow_redirects=False, timeout=10),
        "authorize": requests.get(f"{ISSUER}/authorize", params={"client_id": nul, "redirect_uri": REDIRECT},
                                  allow_redirects=False, timeout=10),
        "bank return": requests.post(f"{ISSUER}/login/bank/a%00b/return", data={"VK_SERVICE": "3013"},
                                     allow_redirects=False, timeout=10),
    }
    assert {name: r.status_code for name, r in answers.items()} == {name: 400 for name in answers}
    assert answers["token form"].json()["error"] == "invalid_request"
