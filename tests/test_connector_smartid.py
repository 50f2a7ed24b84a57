"""The Smart-ID connector against the Smart-ID simulator, in process (no RabbitMQ, no PostgreSQL).

SK's published test vectors pin the connector's protocol arithmetic; the simulator (an independent implementation
of the service side) then exercises every outcome: both flows, every end result, HTTP errors, spoilt answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from klients_simulators.smartid import DEMO_RP_UUID, RelyingParty, SimSettings, create_app

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_identity.connectors.base import LoginFailed, VerifiedIdentity
from klients_identity.connectors.smartid import (
    MESSAGES,
    SmartIdClient,
    SmartIdConfig,
    SmartIdSession,
    acsp_v2_payload,
    auth_code,
    end_result_failure,
    session_secret_digest,
    verification_code,
)
from tests.support.servers import serving

KLIENTS_RP = RelyingParty("6f1c3d1e-8a5b-4c2e-9d7f-0a1b2c3d4e5f", "Klients")
SETTINGS = SimSettings(relying_parties=(RelyingParty(DEMO_RP_UUID, "DEMO"), KLIENTS_RP), delay=0.2)
CALLBACK = "https://klients.example.lv/login/smart-id/callback?value=RrKjjT4aggzu27YBddX1bQ"

# SK's documentation examples (signature_protocols.html, authcode.html, device_link_flows.html).
SK_SECRET = "B98ODiVCebRedSwdTk51zFSaGYyHtY1H2A0ocAi3/Ps="
SK_CHALLENGE = "GYS+yoah6emAcVDNIajwSs6UB/M95XrDxMzXBUkwQJ9YFDipXXzGpPc7raWcuc2+TEoRc7WvIZ/7dU/iRXenYg=="
SK_INTERACTIONS = ("W3sidHlwZSI6ImNvbmZpcm1hdGlvbk1lc3NhZ2UiLCJkaXNwbGF5VGV4dDIwMCI6IkxvbmdlciBkZXNjcmlwdGlvbiBv"
                   "ZiB0aGUgdHJhbnNhY3Rpb24gY29udGV4dCJ9LHsidHlwZSI6ImRpc3BsYXlUZXh0QW5kUElOIiwiZGlzcGxheVRleHQ2"
                   "MCI6IlNob3J0IGRlc2NyaXB0aW9uIG9mIHRoZSB0cmFuc2FjdGlvbiBjb250ZXh0In1d")
SK_LINK = "https://smart-id.com/device-link?deviceLinkType={}sessionToken=wGIrqveE6AuGDATZKmR1mtAZ&sessionType=auth" \
          "&version=1.0&lang=eng"
SK_CALLBACK = "https://rp.example.com/callback-url?value=RrKjjT4aggzu27YBddX1bQ"
LINK = re.compile(r"^https://smart-id\.com/device-link\?deviceLinkType=QR&elapsedSeconds=(\d+)&sessionToken=[A-Za-z0-9]"
                  r"{24,}&sessionType=auth&version=1\.0&lang=lav&authCode=([A-Za-z0-9_-]{43})$")


@contextmanager
def simulator(settings: SimSettings) -> Iterator[str]:
    """Run a simulator on an ephemeral port; yield its base URL."""
    with serving(create_app(settings)) as base:
        yield base


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    """The simulator shared by this module's tests."""
    with simulator(SETTINGS) as base:
        yield base


@pytest.fixture(scope="module")
def control(sim: str) -> Iterator[requests.Session]:
    """An HTTP session for the simulator's test endpoints (and the phone's)."""
    with requests.Session() as http:
        yield http


@pytest.fixture(autouse=True)
def forget_script(request: pytest.FixtureRequest) -> Iterator[None]:
    """No test leaves a scripted next session behind."""
    yield
    if "sim" in request.fixturenames:
        base, http = request.getfixturevalue("sim"), request.getfixturevalue("control")
        http.delete(f"{base}/test/next-session", timeout=5).close()


@pytest.fixture(scope="module")
def ca_pem(sim: str, control: requests.Session) -> bytes:
    """The simulator's issuing CA, the trust anchor."""
    with control.get(f"{sim}/test/ca.pem", timeout=5) as response:
        return response.content


@pytest.fixture
def make_client(sim: str, ca_pem: bytes) -> Iterator[Callable[..., SmartIdClient]]:
    """Build clients for the simulator (DEMO relying party unless overridden); close them afterwards."""
    clients: list[SmartIdClient] = []

    def build(**overrides: Any) -> SmartIdClient:
        fields = {"base_url": f"{sim}/v3", "relying_party_uuid": DEMO_RP_UUID, "relying_party_name": "DEMO",
                  "trust_anchors_pem": (ca_pem,), "scheme_name": "smart-id-demo", "poll_timeout_ms": 1000,
                  "http_timeout": 5.0, **overrides}
        clients.append(SmartIdClient(SmartIdConfig(**fields)))
        return clients[-1]

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., SmartIdClient]) -> SmartIdClient:
    """A client as the identity service configures it for the simulator."""
    return make_client()


def script(sim: str, control: requests.Session, **behaviour: Any) -> None:
    """Tell the simulator how the next session behaves."""
    with control.post(f"{sim}/test/next-session", json=behaviour, timeout=5) as response:
        assert response.status_code == 204, response.text


def phone(sim: str, control: requests.Session, session: SmartIdSession) -> dict[str, Any]:
    """What the simulated phone shows for a session."""
    with control.get(f"{sim}/test/sessions/{session.session_id}", timeout=5) as response:
        return dict(response.json())


def scan(sim: str, control: requests.Session, link: str, document: str, flow_type: str = "QR") -> requests.Response:
    """Submit a device link to the automated testing interface, as the phone that opened it."""
    with control.post(f"{sim}/mock/device-link", timeout=5,
                      json={"documentNumber": document, "deviceLink": link, "flowType": flow_type}) as response:
        return response


def finish(client: SmartIdClient, session: SmartIdSession, **kwargs: Any) -> VerifiedIdentity:
    """Poll until the login ends (as the login page does)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        identity = client.poll(session, **kwargs)
        if identity is not None:
            return identity
    raise AssertionError("the session did not end")


def failed(client: SmartIdClient, session: SmartIdSession) -> LoginFailed:
    """Poll until the login fails; return the failure."""
    with pytest.raises(LoginFailed) as caught:
        finish(client, session)
    return caught.value


def notification_failure(client: SmartIdClient, personal_code: str = "040404-10003") -> LoginFailed:
    """Start a notification login and return how it fails."""
    return failed(client, client.start_notification(personal_code))


# --- SK's test vectors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "code"), [("Hello World!", "7712"), ("You broke it, didn't you.", "3404"),
                                            ("Weeeeeeeeeeeeeeeeeeeeee[bzzt]", "0914")])
def test_verification_code_matches_the_published_vectors(text: str, code: str) -> None:
    """The VC is the last two bytes of SHA-256 over the raw challenge, mod 10000, zero-padded."""
    challenge = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    assert verification_code(challenge) == code


def test_verification_code_of_the_v3_documentation_challenge() -> None:
    """The RP API v3 documentation's rpChallenge gives 7180."""
    assert verification_code(SK_CHALLENGE) == "7180"


def test_acsp_v2_payload_digest_matches_the_documentation() -> None:
    """The ACSP_V2 payload of SK's Web2App example hashes to the digest SK prints."""
    payload = acsp_v2_payload(scheme_name="smart-id", server_random="MTlop6EXCrQ6FOErcKjxUhbV",
                              rp_challenge=SK_CHALLENGE, user_challenge="GnsWXXEjTCKR89fj9uo5u5ReBZ9JR7_pezLAI5jMS00",
                              relying_party_name="DEMO", brokered_rp_name="Example RP", interactions=SK_INTERACTIONS,
                              interaction_type_used="confirmationMessage", initial_callback_url=SK_CALLBACK,
                              flow_type="Web2App")
    assert base64.b64encode(hashlib.sha512(payload).digest()).decode() == (
        "pKOjbNl/5Fy8NfrFqsj6pSn8W8O+Ik8rM33QSsbyD3J9qDJvEm90SboUciuY4wHGWa0Pnq8BgT3NJKmJiUDfKg==")
    qr = acsp_v2_payload(scheme_name="smart-id", server_random="AAAA", rp_challenge="BBBB", user_challenge="CCCC",
                         relying_party_name="DEMO", interactions="W10=", interaction_type_used="displayTextAndPIN",
                         initial_callback_url=SK_CALLBACK, flow_type="QR").decode()
    assert qr.split("|")[6] == "" and qr.split("|")[9] == "" and len(qr.split("|")) == 11


@pytest.mark.parametrize(("kind", "callback", "expected"), [
    ("QR&elapsedSeconds=22&", "", "OY1eHaD4UYedrBwtqUbSkpa0w7ttm4FllPkCD_3wlE0"),
    ("Web2App&", SK_CALLBACK, "aegUh6gCKkXBJhhvtJqSTWB5_2W8TDQt5eZ7db6krv0"),
])
def test_auth_code_matches_the_documentation(kind: str, callback: str, expected: str) -> None:
    """SK's device-link examples reproduce exactly."""
    assert auth_code(session_secret=SK_SECRET, scheme_name="smart-id", rp_challenge=SK_CHALLENGE,
                     relying_party_name="DEMO", brokered_rp_name="Example RP", interactions=SK_INTERACTIONS,
                     initial_callback_url=callback, unprotected_link=SK_LINK.format(kind)) == expected


def test_session_secret_digest_matches_the_documentation() -> None:
    """The callback's sessionSecretDigest of SK's example secret."""
    assert session_secret_digest(SK_SECRET) == "U4CKK13H1XFiyBofev9asqrzIrY5_Gszi_nL_zDKkBc"


# --- notification flow ----------------------------------------------------------------------------------------------

def test_notification_login_verifies_the_person(client: SmartIdClient, sim: str, control: requests.Session) -> None:
    """PNOLV-040404-10003 logs in; the page's code is the phone's; the session survives JSON storage."""
    session = client.start_notification("PNOLV-040404-10003")
    digest = hashlib.sha256(base64.b64decode(session.rp_challenge)).digest()
    assert session.verification_code == f"{int.from_bytes(digest[-2:], 'big') % 10000:04d}"
    assert phone(sim, control, session)["verificationCode"] == session.verification_code
    assert len(base64.b64decode(session.rp_challenge)) == 64
    assert session.flow == "notification" and session.session_token is None and session.session_secret is None
    stored = SmartIdSession.from_dict(json.loads(json.dumps(session.to_dict())))
    assert stored == session
    identity = finish(client, stored)
    assert identity == VerifiedIdentity(
        personal_code="040404-10003", given_name="OK", family_name="TESTNUMBER", method="smart_id",
        acr=LOA_SUBSTANTIAL, amr=("smartid",),
        detail={"document_number": "PNOLV-040404-10003-DEMO-Q", "certificate_level": "QUALIFIED",
                "flow": "notification", "flow_type": "Notification",
                "interaction_type_used": "confirmationMessageAndVerificationCodeChoice"})


@pytest.mark.parametrize(("typed", "code", "given"), [("04040410003", "040404-10003", "OK"),
                                                      ("320000-10003", "320000-10003", "NEW CODE"),
                                                      ("PNOLV-329999-99709", "329999-99709", "NO DOB")])
def test_notification_accepts_codes_as_people_type_them(client: SmartIdClient, typed: str, code: str,
                                                        given: str) -> None:
    """Codes without a hyphen, new-format codes and ETSI identifiers all work."""
    identity = finish(client, client.start_notification(typed))
    assert (identity.personal_code, identity.given_name) == (code, given)


def test_an_invalid_personal_code_is_refused_before_calling_smart_id(client: SmartIdClient) -> None:
    """A code with a wrong check digit never reaches the service."""
    with pytest.raises(LoginFailed) as caught:
        client.start_notification("040404-10004")
    assert caught.value.code == "invalid_personal_code" and caught.value.retry


# --- device-link flow -------------------------------------------------------------------------------------------

def test_device_link_login_and_its_qr_link(client: SmartIdClient) -> None:
    """An anonymous session is answered (by the default DEMO person); the QR link has the documented shape."""
    session = client.start_device_link()
    assert session.flow == "device_link" and session.verification_code is None
    link = client.device_link_url(session, now=session.received_at + 3.7)
    match = LINK.match(link)
    assert match is not None, link
    assert match.group(1) == "3"
    identity = finish(client, session)
    assert identity.personal_code == "040404-10003"
    assert identity.detail == {"document_number": "PNOLV-040404-10003-DEMO-Q", "certificate_level": "QUALIFIED",
                               "flow": "device_link", "flow_type": "QR", "interaction_type_used": "displayTextAndPIN"}


def test_the_qr_link_changes_every_second(client: SmartIdClient) -> None:
    """Within a second the link is the same; a second later both elapsedSeconds and authCode change."""
    session = client.start_device_link()
    start = session.received_at
    links = [client.device_link_url(session, now=start + offset) for offset in (0.1, 0.9, 1.1, 2.5)]
    codes = [LINK.match(link).group(2) for link in links]  # type: ignore[union-attr]
    assert links[0] == links[1]
    assert len({codes[0], codes[2], codes[3]}) == 3
    assert [LINK.match(link).group(1) for link in links] == ["0", "0", "1", "2"]  # type: ignore[union-attr]
    assert "elapsedSeconds" not in client.device_link_url(
        client.start_device_link(initial_callback_url=CALLBACK), kind="Web2App")


def test_the_phone_accepts_the_link_and_its_person_logs_in(client: SmartIdClient, sim: str,
                                                          control: requests.Session) -> None:
    """The link is checked by the simulated app (authCode, freshness); the person who scanned it logs in."""
    script(sim, control, awaitDeviceLink=True)
    session = client.start_device_link()
    assert client.poll(session) is None
    link = client.device_link_url(session)
    forged = link[:-1] + ("A" if link[-1] != "A" else "B")
    assert scan(sim, control, forged, "PNOLV-020100-29990-MOCK-Q").status_code == 400
    future = client.device_link_url(session, now=time.time() + 30)
    assert scan(sim, control, future, "PNOLV-020100-29990-MOCK-Q").status_code == 400
    assert scan(sim, control, link, "PNOLV-020100-29990-MOCK-Q").status_code == 200
    identity = finish(client, session)
    assert (identity.personal_code, identity.given_name) == ("020100-29990", "ADULT")


def test_a_link_signed_for_another_scheme_is_refused_by_the_phone(make_client: Callable[..., SmartIdClient],
                                                                  sim: str, control: requests.Session) -> None:
    """A LIVE-configured client (scheme ``smart-id``) makes links the DEMO app rejects."""
    live = make_client(scheme_name="smart-id")
    script(sim, control, awaitDeviceLink=True)
    session = live.start_device_link()
    assert scan(sim, control, live.device_link_url(session), "PNOLV-040404-10003-DEMO-Q").status_code == 400


def test_web2app_login_needs_the_apps_callback(client: SmartIdClient, sim: str, control: requests.Session) -> None:
    """A same-device completion is accepted only with the callback's sessionSecretDigest and verifier."""
    script(sim, control, awaitDeviceLink=True)
    session = client.start_device_link(initial_callback_url=CALLBACK)
    link = client.device_link_url(session, kind="Web2App", lang="eng")
    with scan(sim, control, link, "PNOLV-040404-10003-DEMO-Q", "Web2App") as response:
        callback_url = response.json()["callbackUrl"]
    assert callback_url.startswith(CALLBACK + "&sessionSecretDigest=")
    params = dict(parse_qsl(urlsplit(callback_url).query))
    time.sleep(SETTINGS.delay + 0.1)
    assert client.poll(session) is None  # complete, but not before the app comes back
    with pytest.raises(LoginFailed) as caught:
        client.poll(session, callback={**params, "userChallengeVerifier": "x" * 43})
    assert caught.value.code == "callback_mismatch"
    with pytest.raises(LoginFailed) as caught:
        client.poll(session, callback={**params, "sessionSecretDigest": "y" * 43})
    assert caught.value.code == "callback_mismatch"
    identity = client.poll(session, callback=params)
    assert identity is not None and identity.detail["flow_type"] == "Web2App"


def test_same_device_links_need_a_callback_url(client: SmartIdClient) -> None:
    """Web2App and App2App links cannot be made for a QR-only session, nor bad callback URLs sent."""
    session = client.start_device_link()
    with pytest.raises(ValueError, match="initial_callback_url"):
        client.device_link_url(session, kind="App2App")
    with pytest.raises(ValueError, match="initial_callback_url"):
        client.start_device_link(initial_callback_url="http://klients.example.lv/cb#x")


# --- end results ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("personal_code", "code", "mentions"), [
    ("030403-10016", "user_refused", "declined"),
    ("030403-10024", "user_refused_interaction", "PIN screen"),
    ("030403-10032", "user_refused_interaction", "verification code screen"),
    ("030403-10040", "user_refused_interaction", "confirmation screen"),
    ("030403-10059", "user_refused_interaction", "verification code screen"),
    ("030403-10075", "wrong_vc", "wrong verification code"),
    ("030403-10083", "timeout", "in time"),
])
def test_demo_accounts_end_as_documented(client: SmartIdClient, personal_code: str, code: str, mentions: str) -> None:
    """SK's Latvian test accounts end with their documented outcome, each with its own message."""
    failure = notification_failure(client, personal_code)
    assert failure.code == code and mentions in failure.message_en and failure.message_lv
    assert failure.retry


@pytest.mark.parametrize(("end_result", "code", "retry"), [
    ("DOCUMENT_UNUSABLE", "document_unusable", False),
    ("ACCOUNT_UNUSABLE", "account_unusable", False),
    ("REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP", "required_interaction_not_supported_by_app", False),
    ("USER_REFUSED_CERT_CHOICE", "user_refused_cert_choice", True),
    ("PROTOCOL_FAILURE", "protocol_failure", True),
    ("EXPECTED_LINKED_SESSION", "expected_linked_session", True),
    ("SERVER_ERROR", "server_error", True),
    ("TIMEOUT", "timeout", True),
    ("USER_REFUSED", "user_refused", True),
    ("WRONG_VC", "wrong_vc", True),
])
def test_every_end_result_has_its_own_failure(client: SmartIdClient, sim: str, control: requests.Session,
                                              end_result: str, code: str, retry: bool) -> None:
    """The end results no demo account produces, scripted; each maps to its code and bilingual message."""
    script(sim, control, endResult=end_result)
    failure = notification_failure(client)
    assert (failure.code, failure.retry) == (code, retry)
    assert (failure.message_lv, failure.message_en) == MESSAGES[code][:2]


def test_device_link_refusals_name_the_screen(client: SmartIdClient, sim: str, control: requests.Session) -> None:
    """USER_REFUSED_INTERACTION carries the refused interaction in the device-link flow too."""
    script(sim, control, documentNumber="PNOLV-030403-10040-MOCK-Q")
    failure = failed(client, client.start_device_link())
    assert failure.code == "user_refused_interaction" and "apstiprinājuma ekrānā" in failure.message_lv


@pytest.mark.parametrize(("end_result", "code", "screen"), [
    ("USER_REFUSED_DISPLAYTEXTANDPIN", "user_refused_displaytextandpin", "PIN screen"),
    ("USER_REFUSED_VC_CHOICE", "user_refused_vc_choice", "verification code screen"),
    ("USER_REFUSED_CONFIRMATIONMESSAGE", "user_refused_confirmationmessage", "confirmation screen"),
    ("USER_REFUSED_CONFIRMATIONMESSAGE_WITH_VC_CHOICE", "user_refused_confirmationmessage_with_vc_choice",
     "verification code screen"),
])
def test_v2_refusal_end_results_are_understood(end_result: str, code: str, screen: str) -> None:
    """The v2 names of refusals, should a proxy or an older service answer them."""
    failure = end_result_failure({"endResult": end_result})
    assert failure.code == code and screen in failure.message_en


def test_an_unknown_end_result_is_a_failure() -> None:
    """A future end result still ends the login."""
    assert end_result_failure({"endResult": "SOMETHING_NEW"}).code == "unknown_end_result"
    assert end_result_failure({}).code == "unknown_end_result"


# --- HTTP errors ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "code"), [
    (400, "bad_request"), (401, "relying_party_unauthorized"), (403, "relying_party_forbidden"),
    (404, "no_account"), (471, "no_suitable_account"), (472, "check_smartid_app"), (480, "client_too_old"),
    (500, "service_error"), (503, "service_error"), (580, "service_maintenance"), (429, "invalid_response"),
])
def test_http_errors_when_starting(client: SmartIdClient, sim: str, control: requests.Session, status: int,
                                   code: str) -> None:
    """Every documented status of session creation (and undocumented ones) becomes a failure."""
    script(sim, control, httpStatus=status)
    with pytest.raises(LoginFailed) as caught:
        client.start_notification("040404-10003")
    assert caught.value.code == code


@pytest.mark.parametrize(("status", "code"), [
    (401, "relying_party_unauthorized"), (403, "relying_party_forbidden"), (404, "session_not_found"),
    (480, "client_too_old"), (580, "service_maintenance"), (502, "service_error"),
])
def test_http_errors_when_polling(client: SmartIdClient, sim: str, control: requests.Session, status: int,
                                  code: str) -> None:
    """Every documented status of the session status request becomes a failure."""
    script(sim, control, statusHttpStatus=status)
    session = client.start_device_link()
    with pytest.raises(LoginFailed) as caught:
        client.poll(session)
    assert caught.value.code == code


def test_an_unknown_session_is_not_found(client: SmartIdClient) -> None:
    """A session the service does not know (or has forgotten) ends the login."""
    session = client.start_device_link()
    gone = SmartIdSession.from_dict({**session.to_dict(), "session_id": "3d32860c-b62d-4716-9992-f6983e678761"})
    with pytest.raises(LoginFailed) as caught:
        client.poll(gone)
    assert caught.value.code == "session_not_found"


def test_an_unreachable_service(make_client: Callable[..., SmartIdClient]) -> None:
    """Nothing listening: service_unavailable."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(LoginFailed) as caught:
        make_client(base_url=f"http://127.0.0.1:{port}/v3").start_device_link()
    assert caught.value.code == "service_unavailable"


def test_a_service_that_does_not_answer(make_client: Callable[..., SmartIdClient]) -> None:
    """A connection that never answers: service_timeout after the configured timeout."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(LoginFailed) as caught:
            make_client(base_url=f"http://127.0.0.1:{port}/v3", http_timeout=0.3).start_device_link()
    assert caught.value.code == "service_timeout"


# --- spoilt answers -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fault", "code"), [
    ("tampered_signature", "bad_signature"),
    ("wrong_algorithm", "bad_signature"),
    ("untrusted_certificate", "untrusted_certificate"),
    ("expired_certificate", "expired_certificate"),
    ("level_too_low", "certificate_level_too_low"),
    ("not_smartid_certificate", "not_smartid_certificate"),
    ("wrong_person", "identity_mismatch"),
    ("wrong_flow_type", "unexpected_flow_type"),
])
def test_spoilt_answers_are_rejected(client: SmartIdClient, sim: str, control: requests.Session, fault: str,
                                     code: str) -> None:
    """Each check of an OK answer has a case that only it catches."""
    script(sim, control, fault=fault)
    failure = notification_failure(client)
    assert failure.code == code and not failure.retry


def test_another_ca_with_the_same_name_is_not_trusted(make_client: Callable[..., SmartIdClient], sim: str,
                                                      control: requests.Session) -> None:
    """Trust is by key, not by name: a client trusting only the other CA rejects genuine answers."""
    with control.get(f"{sim}/test/untrusted-ca.pem", timeout=5) as response:
        other = make_client(trust_anchors_pem=(response.content,))
    assert notification_failure(other).code == "untrusted_certificate"


def test_a_client_with_the_wrong_scheme_name_rejects_the_signature(make_client: Callable[..., SmartIdClient]) -> None:
    """The signed payload starts with the environment's scheme name (DEMO: smart-id-demo)."""
    assert notification_failure(make_client(scheme_name="smart-id")).code == "bad_signature"


# --- relying party and certificate level --------------------------------------------------------------------------

def test_an_unknown_relying_party_uuid_is_forbidden(make_client: Callable[..., SmartIdClient]) -> None:
    """403: the RP UUID does not exist."""
    other = make_client(relying_party_uuid="11111111-2222-4333-8444-555555555555")
    with pytest.raises(LoginFailed) as caught:
        other.start_notification("040404-10003")
    assert caught.value.code == "relying_party_forbidden" and not caught.value.retry


def test_a_wrong_relying_party_name_is_unauthorized(make_client: Callable[..., SmartIdClient]) -> None:
    """401: the name does not belong to the UUID."""
    with pytest.raises(LoginFailed) as caught:
        make_client(relying_party_name="Klients").start_device_link()
    assert caught.value.code == "relying_party_unauthorized"


def test_the_relying_party_name_is_signed_byte_for_byte(make_client: Callable[..., SmartIdClient]) -> None:
    """The name is accepted in any letter case, but the app signs the registered one."""
    assert notification_failure(make_client(relying_party_name="demo")).code == "bad_signature"


def test_a_relying_party_calling_from_elsewhere_is_unauthorized(ca_pem: bytes) -> None:
    """401: the source address is not the one registered for the UUID."""
    with simulator(SimSettings(allowed_ips=frozenset({"192.0.2.10"}), delay=0.2)) as base:
        config = SmartIdConfig(base_url=f"{base}/v3", relying_party_uuid=DEMO_RP_UUID, relying_party_name="DEMO",
                               trust_anchors_pem=(ca_pem,), scheme_name="smart-id-demo")
        with SmartIdClient(config) as elsewhere, pytest.raises(LoginFailed) as caught:
            elsewhere.start_notification("040404-10003")
    assert caught.value.code == "relying_party_unauthorized"


def test_an_advanced_account_needs_an_advanced_request(client: SmartIdClient,
                                                       make_client: Callable[..., SmartIdClient]) -> None:
    """QUALIFIED asked: a Basic-only person has no suitable account; the DEMO RP may not ask ADVANCED."""
    with pytest.raises(LoginFailed) as caught:
        client.start_notification("050404-19993")
    assert caught.value.code == "no_account"
    with pytest.raises(LoginFailed) as caught:
        make_client(certificate_level="ADVANCED").start_notification("050404-19993")
    assert caught.value.code == "relying_party_forbidden"


def test_an_rp_accepting_advanced_logs_in_a_basic_account(make_client: Callable[..., SmartIdClient]) -> None:
    """An RP allowed ADVANCED accounts accepts one, and the identity says which level it was."""
    basic = make_client(relying_party_uuid=KLIENTS_RP.uuid, relying_party_name=KLIENTS_RP.name,
                        certificate_level="ADVANCED")
    identity = finish(basic, basic.start_notification("050404-19993"))
    assert identity.personal_code == "050404-19993" and identity.detail["certificate_level"] == "ADVANCED"
    assert identity.acr == LOA_SUBSTANTIAL


def test_a_basic_account_scanning_a_qualified_qr_code_is_too_low(client: SmartIdClient, sim: str,
                                                                  control: requests.Session) -> None:
    """Whoever scans, the certificate level asked for is enforced."""
    script(sim, control, documentNumber="PNOLV-050404-19993-DEMO-NQ")
    assert failed(client, client.start_device_link()).code == "certificate_level_too_low"


# --- configuration -------------------------------------------------------------------------------------------------

def self_signed(ca: bool) -> bytes:
    """A self-signed certificate, a CA or not."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not a Smart-ID CA")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_configuration_mistakes_are_refused() -> None:
    """Levels, poll timeouts and trust anchors are checked when the client is made."""
    valid = {"base_url": "https://rp-api.smart-id.com/v3", "relying_party_uuid": DEMO_RP_UUID,
             "relying_party_name": "DEMO", "trust_anchors_pem": (self_signed(ca=True),)}
    with pytest.raises(ValueError, match="certificate_level"):
        SmartIdConfig(**valid, certificate_level="QSCD")
    with pytest.raises(ValueError, match="poll_timeout_ms"):
        SmartIdConfig(**valid, poll_timeout_ms=500)
    with pytest.raises(ValueError, match="not a CA"):
        SmartIdClient(SmartIdConfig(**{**valid, "trust_anchors_pem": (self_signed(ca=False),)}))
    with pytest.raises(ValueError, match="trust anchor"):
        SmartIdClient(SmartIdConfig(**{**valid, "trust_anchors_pem": ()}))


def test_simulator_settings_come_from_the_environment() -> None:
    """SIM_SMARTID_* variables configure the simulator."""
    settings = SimSettings.from_env({"SIM_SMARTID_DELAY": "0.2", "SIM_SMARTID_ANONYMOUS_DOCUMENT": "",
                                     "SIM_SMARTID_RELYING_PARTIES": f"{KLIENTS_RP.uuid}:Klients",
                                     "SIM_SMARTID_ALLOWED_IPS": "127.0.0.1, 10.0.0.1"})
    assert settings.delay == 0.2 and settings.anonymous_document == ""
    assert settings.relying_parties == (KLIENTS_RP,) and settings.allowed_ips == {"127.0.0.1", "10.0.0.1"}
    assert SimSettings.from_env({}) == SimSettings()


# --- the v2 fallback (docs/eid.md, "Smart-ID") ----------------------------------------------------------------

def test_a_notification_login_falls_back_to_v2_when_v3_is_in_maintenance(
        make_client: Callable[..., SmartIdClient], sim: str, control: requests.Session) -> None:
    client = make_client(fallback_v2_url=f"{sim}/v2")
    script(sim, control, httpStatus=580)
    session = client.start_notification("040404-10003")
    assert session.protocol == "v2" and len(base64.b64decode(session.rp_challenge)) == 64  # a SHA-512 hash
    assert phone(sim, control, session)["verificationCode"] == session.verification_code
    stored = SmartIdSession.from_dict(json.loads(json.dumps(session.to_dict())))
    identity = finish(client, stored)
    assert (identity.personal_code, identity.given_name, identity.detail["api"]) == ("040404-10003", "OK", "v2")


def test_without_a_fallback_or_for_the_person_s_own_errors_nothing_falls_back(
        make_client: Callable[..., SmartIdClient], sim: str, control: requests.Session) -> None:
    script(sim, control, httpStatus=580)
    with pytest.raises(LoginFailed) as caught:
        make_client().start_notification("040404-10003")
    assert caught.value.code == "service_maintenance"
    with_fallback = make_client(fallback_v2_url=f"{sim}/v2")
    script(sim, control, httpStatus=471)  # the person has no suitable account: v2 would not help
    with pytest.raises(LoginFailed) as caught:
        with_fallback.start_notification("040404-10003")
    assert caught.value.code == "no_suitable_account"


@pytest.mark.parametrize(("behaviour", "code"), [
    ({"fault": "tampered_signature"}, "bad_signature"),
    ({"fault": "untrusted_certificate"}, "untrusted_certificate"),
    ({"fault": "level_too_low"}, "certificate_level_too_low"),
    ({"endResult": "USER_REFUSED_INTERACTION", "interaction": "verificationCodeChoice"}, "user_refused_vc_choice"),
    ({"endResult": "WRONG_VC"}, "wrong_vc"),
])
def test_every_v2_answer_is_checked_like_v3(make_client: Callable[..., SmartIdClient], sim: str,
                                            control: requests.Session, behaviour: dict[str, str], code: str) -> None:
    client = make_client(base_url="http://127.0.0.1:9/v3", fallback_v2_url=f"{sim}/v2")  # v3 unreachable
    script(sim, control, **behaviour)  # for the v2 session that follows
    assert notification_failure(client).code == code
