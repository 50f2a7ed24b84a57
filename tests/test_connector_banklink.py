"""Internet-bank login connectors (Swedbank-style banklink v009, SEB-style e-link) against the bank simulator.

The simulator runs in process on an ephemeral port; the tests drive it as a browser would: POST the request
form to the bank, confirm (or cancel) at the bank, then read the auto-submitting form that returns the person
to us and hand its fields to the connector. No RabbitMQ or PostgreSQL is needed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from klients_simulators.banks import create_app as create_bank_simulator
from klients_simulators.banks import mac_source

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_identity.connectors.banklink import (
    FAILURE_CODES,
    FAILURES,
    V009_REQUEST_MAC_FIELDS,
    BankConfig,
    BankLink,
    BankRequest,
    MemoryNonceStore,
    signed_data,
    split_full_name,
)
from klients_identity.connectors.base import LoginFailed
from tests.support.servers import serving

MERCHANT = "KLIENTS"
RETURN_URL = "https://klients.test/login/bank/return"
ANNA = "374042-80367"
BANK_SENDERS = {"swedbank": "SWEDBANK_LV", "seb": "SEBUB"}


# -- a browser's view of the bank's pages ---------------------------------------------------------------------

@dataclass
class Form:
    """The first form of a page: where it posts, its hidden fields, and its radio choices."""

    action: str = ""
    method: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    radios: list[str] = field(default_factory=list)


class FormParser(HTMLParser):
    """Collect the first form of an HTML page (attribute values come back unescaped)."""

    def __init__(self) -> None:
        super().__init__()
        self.form: Form | None = None
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form" and self.form is None:
            self.form = Form(action=values.get("action", ""), method=values.get("method", "get").lower())
        elif tag == "input" and self.form is not None and not self.done:
            if values.get("type") == "hidden":
                self.form.fields[values["name"]] = values.get("value", "")
            elif values.get("type") == "radio":
                self.form.radios.append(values.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.done = True


def parse_form(html: str) -> Form:
    """Return the page's first form."""
    parser = FormParser()
    parser.feed(html)
    parser.close()
    assert parser.form is not None, html
    return parser.form


# -- fixtures -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def our_key() -> rsa.RSAPrivateKey:
    """Klients' banklink signing key (v009 requests)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def simulator(our_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """The bank simulator on an ephemeral port, with Klients registered as a merchant; yields its base URL."""
    public_pem = our_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    app = create_bank_simulator(merchants={MERCHANT: {"public_key_pem": public_pem, "return_urls": [RETURN_URL]}})
    with serving(app) as base:
        yield base


@pytest.fixture(scope="module")
def configs(simulator: str, our_key: rsa.RSAPrivateKey) -> dict[str, BankConfig]:
    """Both banks configured as dev would be: URLs of the simulator, certificates fetched from it."""
    with requests.Session() as http:
        certs = {bank: http.get(f"{simulator}/test/{bank}/certificate.pem", timeout=10).content
                 for bank in BANK_SENDERS}
    return {
        "swedbank": BankConfig(bank_id="swedbank", display_name="Swedbank", protocol="v009",
                               url=f"{simulator}/swedbank/banklink", merchant_id=MERCHANT,
                               bank_sender_id="SWEDBANK_LV", our_private_key_pem=pem(our_key),
                               bank_certificate_pem=certs["swedbank"]),
        "seb": BankConfig(bank_id="seb", display_name="SEB", protocol="elink",
                          url=f"{simulator}/seb/ipc/epakindex.jsp", merchant_id=MERCHANT, bank_sender_id="SEBUB",
                          our_private_key_pem=None, bank_certificate_pem=certs["seb"]),
    }


@pytest.fixture(params=["swedbank", "seb"])
def link(request: pytest.FixtureRequest, configs: dict[str, BankConfig]) -> BankLink:
    """A connector for each bank in turn, with its own nonce store."""
    return BankLink(configs[request.param], MemoryNonceStore())


def misbehave(simulator: str, bank_id: str, mode: str, seconds: int = 600) -> None:
    """Make the simulated bank's next response misbehave."""
    with requests.Session() as http:
        answer = http.post(f"{simulator}/test/{bank_id}/next-response", json={"mode": mode, "seconds": seconds},
                           timeout=10)
    assert answer.status_code == 204, answer.text


def bank_login(link: BankLink, *, person: str = ANNA, action: str = "confirm",
               bank_request: BankRequest | None = None) -> tuple[BankRequest, dict[str, str]]:
    """Go to the bank with the connector's request (a new one unless given), choose ``person`` and ``action``
    there, and return the request and the fields the bank's auto-submitting form posts back to us."""
    bank_request = bank_request or link.build_request(return_url=RETURN_URL)
    with requests.Session() as browser:
        page = browser.post(bank_request.url, data=bank_request.fields, timeout=10)
        assert page.status_code == 200, page.text
        login = parse_form(page.text)
        assert person in login.radios
        answer = browser.post(urljoin(page.url, login.action), data={"person": person, "action": action},
                              timeout=10)
    assert answer.status_code == 200, answer.text
    back = parse_form(answer.text)
    assert (back.action, back.method) == (RETURN_URL, "post")
    assert "document.forms[0].submit()" in answer.text
    return bank_request, back.fields


def refused(link: BankLink, fields: dict[str, str], nonce: str, *, now: datetime | None = None) -> LoginFailed:
    """Return the LoginFailed the connector raises for ``fields``."""
    with pytest.raises(LoginFailed) as failure:
        link.verify_response(fields, expected_nonce=nonce, now=now)
    return failure.value


def capitals(link: BankLink, name: str) -> str:
    """SEB sends names in capitals, Swedbank as written."""
    return name.upper() if link.config.bank_id == "seb" else name


# -- happy paths ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("person", "given", "family"), [
    (ANNA, "Anna", "Kalniņa"),
    ("161175-19997", "Jānis Pēteris", "Bērziņš"),
    ("040404-10003", "Ērika", "Šķēle-Ūdre"),
    ("320000-00008", "Ģirts", "Čakste"),
])
def test_login_returns_the_verified_person(link: BankLink, person: str, given: str, family: str) -> None:
    bank_request, fields = bank_login(link, person=person)

    identity = link.verify_response(fields, expected_nonce=bank_request.nonce)

    assert identity.personal_code == person
    assert (identity.given_name, identity.family_name) == (capitals(link, given), capitals(link, family))
    assert identity.method == "bank"
    assert identity.acr == LOA_SUBSTANTIAL
    assert identity.amr == (f"bank:{link.config.bank_id}",)
    assert identity.detail["bank"] == link.config.bank_id
    assert identity.detail["token"] == ("7" if link.config.protocol == "v009" else None)


def test_length_prefix_counts_characters_not_bytes() -> None:
    name = "Anna Kalniņa"
    assert len(name) == 12 and len(name.encode()) == 13
    assert signed_data(["3013", name, "", " LV "]) == "0043013012Anna Kalniņa000002LV"
    assert mac_source(["3013", name, "", " LV "]) == signed_data(["3013", name, "", " LV "])


def test_v009_request_is_signed_over_the_documented_fields(configs: dict[str, BankConfig],
                                                           our_key: rsa.RSAPrivateKey) -> None:
    link = BankLink(configs["swedbank"], MemoryNonceStore())
    now = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)

    bank_request = link.build_request(return_url=RETURN_URL, lang="en", now=now)

    fields = bank_request.fields
    assert list(fields) == [*V009_REQUEST_MAC_FIELDS, "VK_MAC", "VK_ENCODING", "VK_LANG"]
    assert (fields["VK_SERVICE"], fields["VK_VERSION"], fields["VK_SND_ID"], fields["VK_REC_ID"]) == (
        "4012", "009", MERCHANT, "SWEDBANK_LV")
    assert fields["VK_NONCE"] == bank_request.nonce and len(bank_request.nonce) <= 50
    assert fields["VK_DATETIME"] == "2026-07-01T12:30:00+0300"  # Riga summer time
    assert (fields["VK_RETURN"], fields["VK_ENCODING"], fields["VK_LANG"]) == (RETURN_URL, "UTF-8", "ENG")
    source = signed_data(fields[name] for name in V009_REQUEST_MAC_FIELDS).encode()
    our_key.public_key().verify(base64.b64decode(fields["VK_MAC"]), source, padding.PKCS1v15(), hashes.SHA512())


def test_elink_request_is_the_documented_unsigned_form(configs: dict[str, BankConfig]) -> None:
    link = BankLink(configs["seb"], MemoryNonceStore())

    bank_request = link.build_request(return_url=RETURN_URL)

    assert bank_request.fields == {"IB_SND_ID": MERCHANT, "IB_SERVICE": "0005", "IB_LANG": "LAT"}
    assert bank_request.url.endswith("/seb/ipc/epakindex.jsp")


# -- refusals -------------------------------------------------------------------------------------------------

def test_bad_mac_is_refused(simulator: str, link: BankLink) -> None:
    misbehave(simulator, link.config.bank_id, "bad_mac")
    bank_request, fields = bank_login(link)

    failure = refused(link, fields, bank_request.nonce)

    assert failure.code == "bad_mac"
    assert failure.message_lv and failure.message_en


def test_a_field_changed_in_transit_or_a_garbled_mac_is_refused(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    mac = "VK_MAC" if link.config.protocol == "v009" else "IB_CRC"
    name = "VK_USER_NAME" if link.config.protocol == "v009" else "IB_USER_INFO"

    stamp = "VK_DATETIME" if link.config.protocol == "v009" else "IB_TIME"
    for change in ({name: fields[name] + "S"}, {stamp: "2026-01-01"}, {mac: "not base64!"}, {mac: "AAAA"}):
        assert refused(link, {**fields, **change}, bank_request.nonce).code == "bad_mac", change
    assert link.verify_response(fields, expected_nonce=bank_request.nonce).personal_code == ANNA


@pytest.mark.parametrize("mode", ["stale", "future"])
def test_a_response_dated_outside_the_allowed_skew_is_refused(simulator: str, link: BankLink, mode: str) -> None:
    misbehave(simulator, link.config.bank_id, mode, seconds=360)
    bank_request, fields = bank_login(link)

    assert refused(link, fields, bank_request.nonce).code == "stale_response"


def test_our_clock_decides_freshness(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    now = datetime.now(UTC)

    assert refused(link, fields, bank_request.nonce, now=now + timedelta(minutes=6)).code == "stale_response"
    assert refused(link, fields, bank_request.nonce, now=now - timedelta(minutes=6)).code == "stale_response"
    assert link.verify_response(fields, expected_nonce=bank_request.nonce, now=now + timedelta(minutes=4))


def test_a_replayed_response_is_refused(simulator: str, link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    link.verify_response(fields, expected_nonce=bank_request.nonce)
    with requests.Session() as http:
        page = http.post(f"{simulator}/test/{link.config.bank_id}/replay", timeout=10)
    replayed = parse_form(page.text).fields
    assert replayed == fields

    assert refused(link, replayed, bank_request.nonce).code == "replayed"
    # Replayed into a new login attempt: v009's signed nonce gives it away; e-link's response is used up.
    fresh = link.build_request(return_url=RETURN_URL)
    expected = "wrong_nonce" if link.config.protocol == "v009" else "replayed"
    assert refused(link, replayed, fresh.nonce).code == expected


def test_a_login_attempt_completes_once(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    link.verify_response(fields, expected_nonce=bank_request.nonce)
    # The same request form submitted to the bank again gives a second, genuinely signed response.
    _, again = bank_login(link, person="161175-19997", bank_request=bank_request)

    assert refused(link, again, bank_request.nonce).code == "replayed"


def test_a_response_for_another_login_attempt_is_refused(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    now = datetime.now(UTC)
    other = link.build_request(return_url=RETURN_URL)
    assert refused(link, fields, "").code == "wrong_nonce"  # the session lost its attempt
    if link.config.protocol == "v009":
        assert refused(link, fields, other.nonce).code == "wrong_nonce"
    else:  # e-link responses carry no nonce: only the attempt's time frame can tell
        for nonce in ("not-an-attempt", other.nonce.replace(".", "-"),
                      link.build_request(return_url=RETURN_URL, now=now - timedelta(minutes=20)).nonce,
                      link.build_request(return_url=RETURN_URL, now=now + timedelta(minutes=10)).nonce):
            assert refused(link, fields, nonce).code == "wrong_nonce"
    assert link.verify_response(fields, expected_nonce=bank_request.nonce).personal_code == ANNA


def test_a_response_from_another_sender_is_refused(simulator: str, link: BankLink) -> None:
    misbehave(simulator, link.config.bank_id, "wrong_sender")
    bank_request, fields = bank_login(link)

    failure = refused(link, fields, bank_request.nonce)

    assert failure.code == "wrong_sender"
    assert failure.retry is False


def test_a_response_for_another_merchant_is_refused(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    someone_else = BankLink(replace(link.config, merchant_id="SOMEONE_ELSE"), MemoryNonceStore())

    assert refused(someone_else, fields, bank_request.nonce).code == "wrong_receiver"


def test_cancel_at_the_bank(link: BankLink) -> None:
    bank_request, fields = bank_login(link, action="cancel")
    assert fields == {}

    failure = refused(link, fields, bank_request.nonce)

    assert failure.code == "cancelled"
    assert failure.retry is True
    assert "atcelta" in failure.message("lv") and "cancelled" in failure.message("en")


def test_an_invalid_personal_code_is_refused(link: BankLink) -> None:
    bank_request, fields = bank_login(link, person="010111-22341")

    failure = refused(link, fields, bank_request.nonce)

    assert failure.code == "bad_personal_code"
    assert failure.retry is False


def test_wrong_service_version_encoding_and_missing_fields(link: BankLink) -> None:
    bank_request, fields = bank_login(link)
    if link.config.protocol == "v009":
        cases = {"wrong_service": [{"VK_SERVICE": "3012"}, {"VK_VERSION": "008"}],
                 "malformed": [{"VK_ENCODING": "ISO-8859-1"}, {"VK_USER_ID": ""}, {"VK_MAC": ""}]}
    else:
        cases = {"wrong_service": [{"IB_SERVICE": "0002"}, {"IB_VERSION": "002"}],
                 "malformed": [{"IB_USER": ""}, {"IB_CRC": " "}]}
    for code, changes in cases.items():
        for change in changes:
            assert refused(link, {**fields, **change}, bank_request.nonce).code == code, change
    assert link.verify_response(fields, expected_nonce=bank_request.nonce).personal_code == ANNA


def test_every_failure_speaks_latvian_and_english() -> None:
    assert set(FAILURE_CODES) >= {"bad_mac", "stale_response", "replayed", "wrong_nonce", "wrong_sender",
                                  "wrong_service", "malformed", "cancelled", "bad_personal_code"}
    for message_lv, message_en, _ in FAILURES.values():
        assert message_lv and message_en and message_lv != message_en


# -- the simulated bank refuses bad requests ------------------------------------------------------------------

def test_the_bank_refuses_a_request_with_a_bad_mac_or_an_unknown_merchant(configs: dict[str, BankConfig]) -> None:
    link = BankLink(configs["swedbank"], MemoryNonceStore())
    good = link.build_request(return_url=RETURN_URL).fields
    stale = link.build_request(return_url=RETURN_URL, now=datetime.now(UTC) - timedelta(minutes=10)).fields
    with requests.Session() as browser:
        tampered = browser.post(link.config.url, data={**good, "VK_RETURN": RETURN_URL + "/evil"}, timeout=10)
        unknown = browser.post(link.config.url, data={**good, "VK_SND_ID": "NOBODY"}, timeout=10)
        late = browser.post(link.config.url, data=stale, timeout=10)
        elink = browser.post(configs["seb"].url, data={"IB_SND_ID": "NOBODY", "IB_SERVICE": "0005"}, timeout=10)
    assert (tampered.status_code, unknown.status_code, late.status_code, elink.status_code) == (400, 400, 400, 400)
    assert "VK_MAC" in tampered.text and "VK_SND_ID" in unknown.text and "VK_DATETIME" in late.text


def test_the_bank_finishes_a_login_session_once(configs: dict[str, BankConfig]) -> None:
    link = BankLink(configs["seb"], MemoryNonceStore())
    bank_request = link.build_request(return_url=RETURN_URL)
    with requests.Session() as browser:
        page = browser.post(bank_request.url, data=bank_request.fields, timeout=10)
        action = urljoin(page.url, parse_form(page.text).action)
        first = browser.post(action, data={"person": ANNA, "action": "confirm"}, timeout=10)
        second = browser.post(action, data={"person": ANNA, "action": "confirm"}, timeout=10)
    assert (first.status_code, second.status_code) == (200, 400)


# -- building blocks ------------------------------------------------------------------------------------------

def test_memory_nonce_store_refuses_a_nonce_until_it_expires() -> None:
    clock = [1000.0]
    store = MemoryNonceStore(clock=lambda: clock[0])

    assert store.use("swedbank", "n1", 1100) is True
    assert store.use("swedbank", "n1", 1100) is False
    assert store.use("seb", "n1", 1100) is True
    clock[0] = 1200.0
    assert store.use("swedbank", "n1", 1300) is True


@pytest.mark.parametrize(("full", "given", "family"), [
    ("Anna Kalniņa", "Anna", "Kalniņa"),
    ("JĀNIS PĒTERIS  BĒRZIŅŠ", "JĀNIS PĒTERIS", "BĒRZIŅŠ"),
    ("Kalniņa,Anna", "Anna", "Kalniņa"),
    ("TÕÕGER , Leõpäöld", "Leõpäöld", "TÕÕGER"),
    ("Madonna", "", "Madonna"),
])
def test_split_full_name(full: str, given: str, family: str) -> None:
    assert split_full_name(full) == (given, family)


def test_configuration_is_checked(configs: dict[str, BankConfig]) -> None:
    swedbank = configs["swedbank"]
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - what must be refused
    with pytest.raises(ValueError, match="our_private_key_pem"):
        BankLink(replace(swedbank, our_private_key_pem=None), MemoryNonceStore())
    with pytest.raises(ValueError, match="2048"):
        BankLink(replace(swedbank, our_private_key_pem=pem(weak)), MemoryNonceStore())
    with pytest.raises(ValueError, match="protocol"):
        BankLink(replace(swedbank, protocol="v008"), MemoryNonceStore())
    with pytest.raises(ValueError, match="VK_"):
        BankLink(swedbank, MemoryNonceStore()).build_request(return_url=RETURN_URL + "?VK_MAC=x")
    assert b"PRIVATE" not in repr(swedbank).encode() and "PRIVATE" not in repr(BankLink(swedbank, MemoryNonceStore()))
