"""Abuse from outside, black-box: limits that hold across workers and instances and per target account
(the same answer whether an account exists or not), e-mail forms that take the same time for known and
unknown addresses, anonymous visitors who cannot fill the database, the retention job, and links that act
on exactly the login of the address they were sent to."""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select, text

from klients_identity.login import passwords
from klients_identity.models import (
    AuthorizationCode,
    BankReturn,
    BrowserSession,
    EmailToken,
    LoginSession,
    PasswordLogin,
    Person,
    RefreshToken,
    TokenRevocation,
    UsedNonce,
)
from tests.support.access_helpers import plant_person, unique_email
from tests.support.email_login import LINK_SUBJECTS, link_in, mail_to, set_password
from tests.support.helpers import bearer, csrf_of, mails
from tests.support.oidc_helpers import ISSUER, REDIRECT, pkce
from tests.support.stack import BIN, ROOT, Stack, identity_session, wait_until

pytestmark = pytest.mark.usefixtures("stack")
STRICT = "http://127.0.0.1:18011"  # a second identity instance (two workers) with the production account limits


def an_address() -> str:
    """Return a client address of its own (identity believes one proxy's X-Forwarded-For in the tests)."""
    return f"198.18.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def browser_from(address: str | None = None) -> requests.Session:
    browser = requests.Session()
    browser.headers["X-Forwarded-For"] = address or an_address()
    return browser


def post_form(browser: requests.Session, path: str, base: str = ISSUER, **fields: str) -> requests.Response:
    page = browser.get(f"{base}{path}", timeout=10)
    return browser.post(f"{base}{path}", data={"csrf": csrf_of(page), **fields}, allow_redirects=False, timeout=10)


def plant_login(email: str, password: str | None = None, *, person_id: str | None = None) -> str:
    """Give ``email`` a password login (of a new person unless ``person_id``); return the person's id."""
    if person_id is None:
        person_id, _ = plant_person(email=email)
    with identity_session() as session:
        session.add(PasswordLogin(email=email, person_id=person_id,
                                  password_hash=passwords.hash_password(password) if password else "none"))
    return person_id


@pytest.fixture(scope="module")
def strict():
    """Identity on another port with two workers and the production per-account limits, on the same database."""
    processes = Stack()
    processes.start("identity-strict", str(BIN / "klients-identity"), "serve", "--workers", "2", "--bind",
                    STRICT.removeprefix("http://"), component="identity",
                    env={"RATE_LIMIT_ACCOUNT_LOGIN": "10/hour", "RATE_LIMIT_ACCOUNT_MAIL": "3/hour",
                         "RATE_LIMIT_ACCOUNT_PUSH": "6/hour", "RATE_LIMIT_AUTHORIZE": "20/minute"})
    wait_until("the second identity", lambda: requests.get(f"{STRICT}/healthz", timeout=1).ok)
    yield STRICT
    processes.stop_all()


# --- Row 10: limits across workers and instances, and per target account ---------------------------------

def test_the_login_limit_per_address_holds_across_workers_and_instances(strict):
    """RATE_LIMIT_LOGIN (30/minute in the tests) is one allowance for the address, whichever instance or
    worker answers."""
    browser = browser_from()
    forms = {base: csrf_of(browser.get(f"{base}/login/email", timeout=10)) for base in (ISSUER, strict)}
    answers = []
    for attempt in range(40):
        base = (ISSUER, strict)[attempt % 2]
        answers.append(browser.post(f"{base}/login/email", timeout=10, data={
            "csrf": forms[base], "email": unique_email("guess"), "password": "not-the-password-1"}).status_code)
    assert answers.count(401) == 30 and answers.count(429) == 10, answers


def test_password_guesses_are_limited_per_account_from_any_address_alike_for_unknown_addresses(strict):
    known, unknown = unique_email("known"), unique_email("unknown")
    plant_login(known, "Pareiza-parole-2026")
    for target in (known, unknown):
        answers = [post_form(browser_from(), "/login/email", strict, email=target,
                             password=f"guess-number-{i}-xyz").status_code for i in range(10)]
        assert answers == [401] * 10
    refused = {target: post_form(browser_from(), "/login/email", strict, email=target, password="guess-11-xyz")
               for target in (known, unknown)}
    assert refused[known].status_code == refused[unknown].status_code == 429
    assert refused[known].text.replace(known, "") == refused[unknown].text.replace(unknown, "")
    # Guessing has stopped: even the right password waits (another address is no help).
    assert post_form(browser_from(), "/login/email", strict, email=known,
                     password="Pareiza-parole-2026").status_code == 429
    assert post_form(browser_from(), "/login/email", strict, email=unique_email("other"),
                     password="guess-xyz-1234").status_code == 401


def test_reset_and_registration_mails_are_limited_per_address(strict, maildir, new_contract):
    known = unique_email("bombed")
    plant_login(known)
    started = time.time() - 1
    answers = [post_form(browser_from(), "/login/email/forgot", strict, email=known) for _ in range(5)]
    assert all(a.status_code == 200 and 'id="sent"' in a.text for a in answers)
    holder = unique_email("holder")
    contract = new_contract(email=holder).number
    answers = [post_form(browser_from(), "/login/email/register", strict, email=holder, contract=contract)
               for _ in range(5)]
    assert all(a.status_code == 200 and 'id="sent"' in a.text for a in answers)
    wait_until("three mails to each", lambda: len(mails(maildir, to=known, after=started)) >= 3
               and len(mails(maildir, to=holder, after=started)) >= 3, timeout=30)
    time.sleep(3)
    assert len(mails(maildir, to=known, after=started)) == 3
    assert len(mails(maildir, to=holder, after=started)) == 3


def test_smartid_notifications_are_limited_per_personal_code(strict):
    """Push bombing: a personal code gets at most RATE_LIMIT_ACCOUNT_PUSH notifications, whoever asks; a code
    without an account is answered the same."""
    from tests.support.stack import random_personal_code

    for code in ("050405-10009", random_personal_code()):
        for _ in range(6):
            assert post_form(browser_from(), "/login/smart-id", strict, personal_code=code).status_code != 429
        refused = post_form(browser_from(), "/login/smart-id", strict, personal_code=code)
        assert refused.status_code == 429 and "Pārāk daudz" in refused.text


# --- Row 11: the e-mail forms take the same time for known and unknown addresses ----------------------

def _timed(browser: requests.Session, path: str, csrf: str, **fields: str) -> float:
    browser.headers["X-Forwarded-For"] = an_address()
    started = time.perf_counter()
    answer = browser.post(f"{ISSUER}{path}", data={"csrf": csrf, **fields}, timeout=10)
    took = time.perf_counter() - started
    assert answer.status_code == 200 and 'id="sent"' in answer.text
    return took


def test_email_forms_take_the_same_time_for_known_and_unknown_addresses():
    """Registration and reset answer alike for addresses with and without an account, in time too: the median
    of paired differences (known minus unknown, interleaved so load falls on both alike) stays within 1.5 ms
    (unpadded, the two differ by 2-6 ms here and by 10-20 ms on a loaded machine)."""
    rounds = 40
    known = [unique_email("timed") for _ in range(rounds)]
    for address in known:
        plant_login(address)
    browser = browser_from()
    for path in ("/login/email/forgot", "/login/email/register"):
        csrf = csrf_of(browser.get(f"{ISSUER}{path}", timeout=10))
        extra = {"contract": "LVG-100001"} if path.endswith("register") else {}
        for _ in range(3):
            _timed(browser, path, csrf, email=unique_email("warm-up"), **extra)
        differences = [(_timed(browser, path, csrf, email=address, **extra)
                        - _timed(browser, path, csrf, email=unique_email("nobody"), **extra)) * 1000
                       for address in known]
        assert abs(statistics.median(differences)) < 1.5, (path, sorted(differences))


# --- Row 7: anonymous visitors cannot fill the database; the retention job ----------------------------

def test_anonymous_authorization_requests_are_limited_per_address(strict):
    """Each anonymous authorization request parks the request in a session row: an address gets
    RATE_LIMIT_AUTHORIZE of them (20/minute on the strict instance), then 429 and no row."""
    address = an_address()
    before = _count(BrowserSession)
    answers = [requests.get(f"{strict}/authorize", headers={"X-Forwarded-For": address}, allow_redirects=False,
                            timeout=10, params={
                                "client_id": "klients-portal", "redirect_uri": REDIRECT, "response_type": "code",
                                "scope": "openid", "state": f"s{n}", "code_challenge": pkce()[1],
                                "code_challenge_method": "S256"}).status_code
               for n in range(25)]
    assert answers.count(302) == 20 and answers.count(429) == 5, answers
    assert _count(BrowserSession) - before <= 20

def _count(model) -> int:
    with identity_session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_page_views_without_stored_state_write_no_session_row():
    before = _count(BrowserSession)
    for path in ("/login", "/login/email", "/login/email/register", "/login/email/forgot?lang=en", "/login/smart-id"):
        for _ in range(3):
            assert requests.get(f"{ISSUER}{path}", timeout=10).status_code == 200
    browser = browser_from()
    assert browser.get(f"{ISSUER}/login/email?lang=en", timeout=10).status_code == 200
    assert _count(BrowserSession) == before
    # The forms still work from such a browser: CSRF checked, language kept.
    wrong = post_form(browser, "/login/email", email=unique_email("nobody"), password="not-the-password-1")
    assert wrong.status_code == 401 and "Wrong e-mail or password" in wrong.text, wrong.text[:300]
    assert browser.post(f"{ISSUER}/login/email", data={"csrf": "forged", "email": "a@b.lv", "password": "x"},
                        timeout=10).status_code == 400
    assert _count(BrowserSession) == before


def test_bank_returns_are_limited_per_address_and_keep_only_the_protocols_fields():
    browser = browser_from()
    with identity_session() as session:
        before = set(session.scalars(select(BankReturn.key_hash)))
    junk = {"VK_SERVICE": "3013", "VK_NONCE": "n" * 40, "padding": "x" * 60_000}
    answers = [browser.post(f"{ISSUER}/login/bank/swedbank/return", data=junk, allow_redirects=False,
                            timeout=10).status_code for _ in range(35)]
    assert answers.count(303) == 30 and answers.count(429) == 5, answers
    with identity_session() as session:
        parked = [row.fields for row in session.scalars(select(BankReturn)) if row.key_hash not in before]
    assert len(parked) == 30 and all(fields == {"VK_SERVICE": "3013", "VK_NONCE": "n" * 40} for fields in parked)


@pytest.mark.parametrize("bank_id", ["no-such-bank", "b" * 40])
def test_an_unknown_or_overlong_bank_id_is_a_404_page(bank_id):
    for method in ("GET", "POST"):
        answer = browser_from().request(method, f"{ISSUER}/login/bank/{bank_id}/return", data={"VK_SERVICE": "3013"},
                                        allow_redirects=False, timeout=10)
        assert answer.status_code == 404 and "text/html" in answer.headers["Content-Type"], answer.text[:200]
    done = browser_from().get(f"{ISSUER}/login/bank/{bank_id}/done?r=x", timeout=10)
    assert done.status_code == 400


def test_purge_deletes_what_expired_and_keeps_what_reuse_detection_needs():
    now = datetime.now(UTC)
    old, recent, later = now - timedelta(hours=2), now - timedelta(minutes=10), now + timedelta(hours=1)
    person, _ = plant_person()
    tag = uuid.uuid4().hex[:8]

    def code(name: str, expires: datetime, used: bool = False) -> AuthorizationCode:
        return AuthorizationCode(code_hash=f"{tag}-{name}", client_id="klients-portal", person_id=person, sid="s",
                                 redirect_uri="http://x/cb", scope="openid", code_challenge="c",
                                 code_challenge_method="S256", acr="a", amr=[], auth_time=old, expires_at=expires,
                                 used_at=recent if used else None)

    def token(name: str, family: str, sid: str, expires: datetime, rotated: bool) -> RefreshToken:
        return RefreshToken(token_hash=f"{tag}-{name}", family_id=f"{tag}-{family}", client_id="klients-portal",
                            person_id=person, sid=f"{tag}-{sid}", scope="openid", acr="a", amr=[], auth_time=old,
                            issued_at=old, expires_at=expires, rotated_at=old if rotated else None)

    def login(name: str, expires: datetime) -> LoginSession:
        return LoginSession(sid=f"{tag}-{name}", person_id=person, acr="a", amr=[], auth_time=old, expires_at=expires)

    with identity_session() as session:
        session.add_all([
            code("old", old), code("used-recently", recent, used=True), code("live", later),
            token("ended-1", "ended", "gone", old, True),
            token("ended-2", "ended", "gone", old - timedelta(hours=1), True),
            token("rotated", "alive", "kept", old, True), token("current", "alive", "kept", later, False),
            login("gone", old), login("kept", old), login("live", later),
            BrowserSession(id_hash=f"{tag}-old", data={"a": 1}, expires_at=old),
            BrowserSession(id_hash=f"{tag}-live", data={"a": 1}, expires_at=later),
            BankReturn(key_hash=f"{tag}-old", bank_id="swedbank", fields={}, expires_at=recent),
            BankReturn(key_hash=f"{tag}-live", bank_id="swedbank", fields={}, expires_at=later),
            UsedNonce(provider="swedbank", nonce=f"{tag}-old", expires_at=recent),
            UsedNonce(provider="swedbank", nonce=f"{tag}-live", expires_at=later),
            EmailToken(token_hash=f"{tag}-old", purpose="reset", email="a@b.lv", expires_at=recent),
            EmailToken(token_hash=f"{tag}-live", purpose="reset", email="a@b.lv", expires_at=later),
            TokenRevocation(kind="jti", value=f"{tag}-old", revoked_at=old, reason="revoke"),
            TokenRevocation(kind="jti", value=f"{tag}-live", revoked_at=datetime.now(UTC), reason="revoke"),
        ])
        session.execute(text("INSERT INTO rate_limits (key, count, expires_at) VALUES (:old, 1, :t0), (:live, 1, :t1)"),
                        {"old": f"{tag}-old", "live": f"{tag}-live", "t0": recent.timestamp(),
                         "t1": later.timestamp()})
    result = subprocess.run([str(BIN / "klients-identity"), "purge", "--batch", "2"], cwd=ROOT, env=os.environ,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "purged" in result.stdout

    def left(column) -> set[str]:
        with identity_session() as session:
            return {value.removeprefix(f"{tag}-") for value in session.scalars(select(column).where(
                column.like(f"{tag}-%")))}

    assert left(AuthorizationCode.code_hash) == {"used-recently", "live"}
    assert left(RefreshToken.token_hash) == {"rotated", "current"}  # a replayed rotated token still revokes
    assert left(LoginSession.sid) == {"kept", "live"}  # "kept" still has a living refresh family
    for column in (BrowserSession.id_hash, BankReturn.key_hash, UsedNonce.nonce, EmailToken.token_hash,
                   TokenRevocation.value):
        assert left(column) == {"live"}, column
    with identity_session() as session:
        assert set(session.scalars(text("SELECT key FROM rate_limits WHERE key LIKE :t"), {"t": f"{tag}-%"})) \
            == {f"{tag}-live"}


# --- Row 5 and row 8: links act on exactly the login of their address; no 500s ------------------------

def test_a_reset_changes_exactly_the_login_of_the_address_the_link_went_to(maildir):
    first, second = unique_email("first"), unique_email("second")
    person = plant_login(first, "Pirmā-parole-2026")
    plant_login(second, "Otrā-parole-2026", person_id=person)
    started = time.time() - 1
    post_form(browser_from(), "/login/email/forgot", email=second)
    assert set_password(browser_from(), link_in(mail_to(maildir, second, started)),
                        "Jaunā-parole-2026").status_code == 200
    assert post_form(browser_from(), "/login/email", email=second, password="Jaunā-parole-2026").status_code == 200
    assert post_form(browser_from(), "/login/email", email=second, password="Otrā-parole-2026").status_code == 401
    assert post_form(browser_from(), "/login/email", email=first, password="Pirmā-parole-2026").status_code == 200


def test_a_contact_change_moves_exactly_the_login_of_the_old_address(gateway, mint, maildir):
    other, current, new = unique_email("other"), unique_email("current"), unique_email("new")
    person = plant_login(other)
    with identity_session() as session:
        session.get(Person, person).email = current
    plant_login(current, person_id=person)
    token = mint({}, subject=person)
    assert gateway.patch("/api/v1/me/contact", json={"email": new}, headers=bearer(token)).status_code == 200
    wait_until(f"the link to {new}", lambda: mails(maildir, to=new), timeout=20)
    opened = requests.get(link_in(mails(maildir, to=new)[0]), timeout=10)
    assert opened.status_code == 200 and 'id="email-confirmed"' in opened.text
    with identity_session() as session:
        logins = set(session.scalars(select(PasswordLogin.email).where(PasswordLogin.person_id == person)))
    assert logins == {other, new}


def test_confirming_an_address_another_person_logs_in_with_is_a_clear_409(gateway, mint, maildir):
    taken = unique_email("taken")
    owner = plant_login(taken, "Savējā-parole-2026")
    person, _ = plant_person(email=unique_email("before"))
    token = mint({}, subject=person)
    assert gateway.patch("/api/v1/me/contact", json={"email": taken}, headers=bearer(token)).status_code == 200
    wait_until(f"the link to {taken}", lambda: mails(maildir, to=taken), timeout=20)
    link = link_in(mails(maildir, to=taken)[0])
    opened = requests.get(link, timeout=10)
    assert opened.status_code == 409 and "text/html" in opened.headers["Content-Type"]
    assert "cita persona" in opened.text
    with identity_session() as session:
        assert session.get(PasswordLogin, taken).person_id == owner
        assert session.get(Person, person).email != taken
    assert post_form(browser_from(), "/login/email", email=taken, password="Savējā-parole-2026").status_code == 200


def test_a_second_registration_link_for_the_same_address_is_a_clear_409(maildir, new_contract):
    address = unique_email("twice")
    contract = new_contract(email=address).number
    started = time.time() - 1
    for _ in range(2):
        assert 'id="sent"' in post_form(browser_from(), "/login/email/register", email=address,
                                        contract=contract).text

    def links() -> list[str]:
        return [link_in(m) for m in mails(maildir, to=address, subject=LINK_SUBJECTS, after=started)]

    wait_until("both registration links", lambda: len(links()) == 2, timeout=20)
    first, second = links()
    assert set_password(browser_from(), first, "Pirmais-konts-2026").status_code == 200
    again = set_password(browser_from(), second, "Otrais-konts-2026")
    assert again.status_code == 409 and "jau ir konts" in again.text
    with identity_session() as session:
        assert session.scalar(select(func.count()).select_from(Person).where(Person.email == address)) == 1
    assert post_form(browser_from(), "/login/email", email=address, password="Pirmais-konts-2026").status_code == 200
