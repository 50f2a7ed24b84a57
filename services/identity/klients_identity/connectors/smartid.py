"""Smart-ID login through the Relying Party API v3 (docs/eid.md, "Smart-ID").

Two flows, both ending in one ``SmartIdClient.poll`` that answers ``None`` while the person is still busy, a
``VerifiedIdentity`` once every check has passed, and ``LoginFailed`` otherwise:

* **notification** – the person types a personal code, the Smart-ID app on their phone gets a push, and the page
  shows the 4-digit verification code (``SmartIdSession.verification_code``) to compare with the one in the app;
* **device link** – anonymous: the page shows a QR code whose link (``SmartIdClient.device_link_url``) must be
  regenerated every second, or on the phone itself a Web2App/App2App link. Same-device links need an
  ``initial_callback_url``; the app then opens that URL with ``sessionSecretDigest`` and ``userChallengeVerifier``,
  and the page handling it passes those query parameters to ``poll(session, callback=...)``. The caller checks the
  random value it put into the callback URL against the person's browser cookie and accepts each callback once.

An ``OK`` answer is accepted only when (``response_verification.html``): the certificate was issued by one of the
configured trust anchors and is within its validity period; it is a Smart-ID authentication certificate (policy
OIDs, key usage); its level, both as claimed in the answer and by its policies, is at least the configured one; the
``flowType`` is one this session offered; the RSASSA-PSS signature over the ``ACSP_V2`` payload verifies with the
parameters we asked for; the subject is a Latvian personal code and, when the person named one, that code.
Certificate revocation (OCSP) is not checked.

**Fallback to v2.** With ``fallback_v2_url`` configured, a notification login whose v3 start fails because the
service is down, in maintenance or erroring is started again on RP API v2 (docs/eid.md, "Smart-ID"): a SHA-512
hash of 64 random bytes, the verification code computed from it, and on ``OK`` the same certificate checks plus
an RSA PKCS#1 v1.5 signature over that very hash.

``SmartIdSession`` is what the identity service keeps between page loads. It holds the device link's
``session_secret``: store it server-side only, never in the browser. In outline::

    client = SmartIdClient(config)                 # one per process; close() on shutdown
    session = client.start_device_link()           # or client.start_notification("010180-15097")
    store(session.to_dict())                       # server-side
    link = client.device_link_url(session)         # every second, rendered as a QR code
    identity = client.poll(SmartIdSession.from_dict(load()))  # None: poll again; LoginFailed: show its message
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import Any

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_common.personal_code import normalise_personal_code
from klients_identity.connectors.base import LoginFailed, VerifiedIdentity

log = logging.getLogger(__name__)

LEVELS = {"ADVANCED": 1, "QUALIFIED": 2}
HASH_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256, "SHA-384": hashes.SHA384, "SHA-512": hashes.SHA512,
    "SHA3-256": hashes.SHA3_256, "SHA3-384": hashes.SHA3_384, "SHA3-512": hashes.SHA3_512,
}
SIGNATURE_PROTOCOL = "ACSP_V2"
SIGNATURE_ALGORITHM = "rsassa-pss"
HASH_ALGORITHM = "SHA-512"  # what we ask the app to sign with
DEVICE_LINK_KINDS = ("QR", "Web2App", "App2App")
SAME_DEVICE = ("Web2App", "App2App")

# Policy OIDs of Smart-ID authentication certificates, by level (SID-java validators).
POLICIES = {
    "QUALIFIED": frozenset({"1.3.6.1.4.1.10015.17.2", "0.4.0.2042.1.2"}),
    "ADVANCED": frozenset({"1.3.6.1.4.1.10015.17.1", "0.4.0.2042.1.1"}),
}
# Authentication key purposes: the Smart-ID EKU (certificates since April 2025) or, before, TLS client auth.
AUTH_KEY_PURPOSES = frozenset({x509.ObjectIdentifier("1.3.6.1.4.1.62306.5.7.0"), ExtendedKeyUsageOID.CLIENT_AUTH})

DISPLAY_TEXT_60 = "Pieslēgšanās portālam Klients"
DISPLAY_TEXT_200 = "Pieslēgšanās portālam Klients. Izvēlieties kontrolkodu, kas redzams portāla lapā."
# The notification flow asks the person to pick the verification code they see on the page (older apps: PIN only).
NOTIFICATION_INTERACTIONS = (
    {"type": "confirmationMessageAndVerificationCodeChoice", "displayText200": DISPLAY_TEXT_200},
    {"type": "displayTextAndPIN", "displayText60": DISPLAY_TEXT_60},
)
DEVICE_LINK_INTERACTIONS = ({"type": "displayTextAndPIN", "displayText60": DISPLAY_TEXT_60},)

SESSION_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
SESSION_TOKEN = re.compile(r"^[A-Za-z0-9]{24,}$")
USER_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
LANGUAGE = re.compile(r"^[a-z]{3}$")

# code: (Latvian, English, whether trying again with Smart-ID makes sense)
MESSAGES: dict[str, tuple[str, str, bool]] = {
    "user_refused": ("Jūs atteicāties no pieslēgšanās Smart-ID lietotnē.",
                     "You declined the login in the Smart-ID app.", True),
    "user_refused_cert_choice": ("Jūs atcēlāt ierīces izvēli Smart-ID lietotnē.",
                                 "You cancelled the choice of device in the Smart-ID app.", True),
    "timeout": ("Pieslēgšanās Smart-ID lietotnē netika apstiprināta laikā. Mēģiniet vēlreiz.",
                "The login was not confirmed in the Smart-ID app in time. Please try again.", True),
    "document_unusable": ("Jūsu Smart-ID kontu šobrīd nevar izmantot. Pārbaudiet Smart-ID lietotni vai sazinieties ar "
                          "Smart-ID klientu atbalstu.",
                          "Your Smart-ID account cannot be used right now. Check the Smart-ID app or contact Smart-ID "
                          "customer support.", False),
    "account_unusable": ("Jūsu Smart-ID konts pašlaik nav lietojams. Pārbaudiet Smart-ID lietotni.",
                         "Your Smart-ID account is currently unusable. Check the Smart-ID app.", False),
    "wrong_vc": ("Smart-ID lietotnē tika izvēlēts nepareizs kontrolkods. Mēģiniet vēlreiz un izvēlieties kodu, kas "
                 "redzams šajā lapā.",
                 "A wrong verification code was chosen in the Smart-ID app. Try again and choose the code shown on "
                 "this page.", True),
    "required_interaction_not_supported_by_app": (
        "Jūsu Smart-ID lietotnes versija neatbalsta šo pieslēgšanās veidu. Atjauniniet lietotni un mēģiniet vēlreiz.",
        "Your Smart-ID app does not support this kind of login. Update the app and try again.", False),
    "protocol_failure": ("Smart-ID pieslēgšanās neizdevās tehniskas kļūdas dēļ. Mēģiniet vēlreiz.",
                         "The Smart-ID login failed because of a technical error. Please try again.", True),
    "expected_linked_session": ("Smart-ID lietotne gaidīja citu darbību. Sāciet pieslēgšanos no jauna.",
                                "The Smart-ID app was waiting for a different request. Please start the login again.",
                                True),
    "server_error": ("Smart-ID pakalpojumā radās kļūda. Mēģiniet vēlreiz vēlāk.",
                     "The Smart-ID service had an error. Please try again later.", True),
    "unknown_end_result": ("Smart-ID pieslēgšanās beidzās neparedzēti. Mēģiniet vēlreiz.",
                           "The Smart-ID login ended unexpectedly. Please try again.", True),
    "invalid_personal_code": ("Pārbaudiet personas kodu: tam jābūt 11 cipariem, piemēram, 010180-15097.",
                              "Check the personal code: it has 11 digits, e.g. 010180-15097.", True),
    "bad_request": ("Smart-ID pakalpojums noraidīja pieslēgšanās pieprasījumu. Izmantojiet citu pieslēgšanās veidu.",
                    "The Smart-ID service rejected the login request. Please use another login method.", False),
    "relying_party_unauthorized": ("Pieslēgšanās ar Smart-ID šobrīd nav pieejama: pakalpojums neatpazina portālu. "
                                   "Izmantojiet citu pieslēgšanās veidu.",
                                   "Smart-ID login is not available right now: the service did not recognise this "
                                   "portal. Please use another login method.", False),
    "relying_party_forbidden": ("Pieslēgšanās ar Smart-ID šobrīd nav pieejama: portālam nav atļaujas veikt šo "
                                "pieprasījumu. Izmantojiet citu pieslēgšanās veidu.",
                                "Smart-ID login is not available right now: this portal is not permitted to make "
                                "this request. Please use another login method.", False),
    "no_account": ("Šim personas kodam nav atrasts piemērots Smart-ID konts. Pārbaudiet personas kodu.",
                   "No suitable Smart-ID account was found for this personal code. Check the personal code.", True),
    "no_suitable_account": ("Jūsu Smart-ID konts nav vajadzīgā līmeņa: pieslēgšanai nepieciešams kvalificēts "
                            "Smart-ID konts.",
                            "Your Smart-ID account is not of the required level: a qualified Smart-ID account is "
                            "needed.", False),
    "check_smartid_app": ("Jūsu Smart-ID kontā ir problēma. Atveriet Smart-ID lietotni vai Smart-ID "
                          "pašapkalpošanās portālu.",
                          "There is an issue with your Smart-ID account. Open the Smart-ID app or the Smart-ID "
                          "self-service portal.", False),
    "session_not_found": ("Smart-ID pieslēgšanās sesija vairs nav derīga. Sāciet pieslēgšanos no jauna.",
                          "The Smart-ID login session is no longer valid. Please start the login again.", True),
    "client_too_old": ("Pieslēgšanās ar Smart-ID īslaicīgi nav pieejama. Izmantojiet citu pieslēgšanās veidu.",
                       "Smart-ID login is temporarily unavailable. Please use another login method.", False),
    "service_maintenance": ("Smart-ID pakalpojumam notiek apkope. Mēģiniet vēlreiz vēlāk.",
                            "The Smart-ID service is under maintenance. Please try again later.", True),
    "service_error": ("Smart-ID pakalpojums šobrīd nav pieejams. Mēģiniet vēlreiz vēlāk.",
                      "The Smart-ID service is not available right now. Please try again later.", True),
    "service_unavailable": ("Neizdevās sazināties ar Smart-ID pakalpojumu. Mēģiniet vēlreiz vēlāk.",
                            "Could not reach the Smart-ID service. Please try again later.", True),
    "service_timeout": ("Smart-ID pakalpojums neatbildēja laikā. Mēģiniet vēlreiz.",
                        "The Smart-ID service did not answer in time. Please try again.", True),
    "invalid_response": ("Smart-ID pakalpojums atbildēja neparedzēti. Mēģiniet vēlreiz vēlāk.",
                         "The Smart-ID service gave an unexpected answer. Please try again later.", True),
    "untrusted_certificate": ("Neizdevās pārbaudīt jūsu Smart-ID sertifikātu: to nav izdevis uzticams izdevējs.",
                              "Your Smart-ID certificate could not be verified: it was not issued by a trusted "
                              "issuer.", False),
    "expired_certificate": ("Jūsu Smart-ID sertifikāts nav derīgs (beidzies vai vēl nav stājies spēkā). Pārbaudiet "
                            "Smart-ID lietotni.",
                            "Your Smart-ID certificate is not valid (expired or not yet valid). Check the Smart-ID "
                            "app.", False),
    "not_smartid_certificate": ("Saņemtais sertifikāts nav Smart-ID autentifikācijas sertifikāts.",
                                "The certificate received is not a Smart-ID authentication certificate.", False),
    "certificate_level_too_low": ("Jūsu Smart-ID konts nav vajadzīgā līmeņa: pieslēgšanai nepieciešams kvalificēts "
                                  "Smart-ID konts (ne Smart-ID Basic).",
                                  "Your Smart-ID account is not of the required level: a qualified Smart-ID account "
                                  "(not Smart-ID Basic) is needed.", False),
    "bad_signature": ("Smart-ID paraksts neizturēja pārbaudi. Sāciet pieslēgšanos no jauna.",
                      "The Smart-ID signature did not verify. Please start the login again.", False),
    "unexpected_flow_type": ("Smart-ID pieslēgšanās tika pabeigta veidā, ko šī lapa nepiedāvāja. Sāciet no jauna.",
                             "The Smart-ID login was completed in a way this page did not offer. Please start again.",
                             False),
    "callback_mismatch": ("Smart-ID lietotnes atgriešanās saite neatbilst šai pieslēgšanās reizei. Sāciet no jauna.",
                          "The link the Smart-ID app returned with does not match this login. Please start again.",
                          False),
    "identity_mismatch": ("Smart-ID pieslēgšanās tika apstiprināta ar cita cilvēka kontu.",
                          "The Smart-ID login was confirmed with another person's account.", False),
    "unsupported_identity": ("Pieslēgties var tikai ar Latvijas personas kodu.",
                             "Only a Latvian personal code can be used to log in.", False),
}

# A refused interaction: the screen the person cancelled on (v3 details.interaction and the v2 end results).
REFUSED_SCREENS = {
    "displayTextAndPIN": ("PIN koda ievades ekrānā", "on the PIN screen"),
    "confirmationMessage": ("apstiprinājuma ekrānā", "on the confirmation screen"),
    "confirmationMessageAndVerificationCodeChoice": ("kontrolkoda izvēles ekrānā", "on the verification code screen"),
    "verificationCodeChoice": ("kontrolkoda izvēles ekrānā", "on the verification code screen"),
}
V2_REFUSALS = {
    "USER_REFUSED_DISPLAYTEXTANDPIN": "displayTextAndPIN",
    "USER_REFUSED_VC_CHOICE": "verificationCodeChoice",
    "USER_REFUSED_CONFIRMATIONMESSAGE": "confirmationMessage",
    "USER_REFUSED_CONFIRMATIONMESSAGE_WITH_VC_CHOICE": "confirmationMessageAndVerificationCodeChoice",
}
END_RESULTS = frozenset({"USER_REFUSED", "USER_REFUSED_CERT_CHOICE", "TIMEOUT", "DOCUMENT_UNUSABLE", "ACCOUNT_UNUSABLE",
                         "WRONG_VC", "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP", "PROTOCOL_FAILURE",
                         "EXPECTED_LINKED_SESSION", "SERVER_ERROR"})
# v3 start failures after which the notification flow is tried again on v2 (the service, not the person).
FALLBACK_ON = frozenset({"service_maintenance", "service_error", "service_unavailable", "service_timeout"})
# v2 answers sign the hash with PKCS#1 v1.5; only SHA-512 is asked for.
V2_SIGNATURE_ALGORITHMS: dict[str, type[hashes.HashAlgorithm]] = {"sha512WithRSAEncryption": hashes.SHA512}
HTTP_FAILURES = {400: "bad_request", 401: "relying_party_unauthorized", 403: "relying_party_forbidden",
                 471: "no_suitable_account", 472: "check_smartid_app", 480: "client_too_old",
                 580: "service_maintenance"}


def failure(code: str) -> LoginFailed:
    """Return the ``LoginFailed`` for ``code`` with its messages (``MESSAGES``)."""
    message_lv, message_en, retry = MESSAGES[code]
    return LoginFailed(code, message_lv, message_en, retry=retry)


def reject(code: str, reason: str) -> LoginFailed:
    """Log why an answer was not accepted (no secrets, no personal data) and return its ``LoginFailed``."""
    log.warning("Smart-ID login rejected: %s (%s)", code, reason)
    return failure(code)


def refused_on(code: str, interaction: object) -> LoginFailed:
    """Return the failure for a refusal on a given interaction screen (a generic refusal if the screen is unknown)."""
    screen = REFUSED_SCREENS.get(interaction) if isinstance(interaction, str) else None
    if screen is None:
        message_lv, message_en, _ = MESSAGES["user_refused"]
    else:
        message_lv = f"Jūs atcēlāt pieslēgšanos Smart-ID lietotnes {screen[0]}."
        message_en = f"You cancelled the login in the Smart-ID app {screen[1]}."
    return LoginFailed(code, message_lv, message_en, retry=True)


def end_result_failure(result: Mapping[str, Any]) -> LoginFailed:
    """Map a completed session's ``result`` whose ``endResult`` is not ``OK`` to ``LoginFailed``."""
    end_result = result.get("endResult")
    if end_result == "USER_REFUSED_INTERACTION":
        details = result.get("details")
        return refused_on("user_refused_interaction", details.get("interaction") if isinstance(details, dict) else None)
    if end_result in V2_REFUSALS:
        return refused_on(end_result.lower(), V2_REFUSALS[end_result])
    if end_result in END_RESULTS:
        return failure(end_result.lower())
    return reject("unknown_end_result", f"endResult {str(end_result)[:40]!r}")


def http_failure(status: int, stage: str) -> LoginFailed:
    """Map an HTTP error status of the RP API to ``LoginFailed``; ``stage`` is ``start`` or ``poll`` (for 404)."""
    if status == 404:
        return failure("no_account" if stage == "start" else "session_not_found")
    if status in HTTP_FAILURES:
        return failure(HTTP_FAILURES[status])
    return failure("service_error" if status >= 500 else "invalid_response")


def b64(data: bytes) -> str:
    """Standard Base64 with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 §5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(value: str) -> bytes:
    """Decode strict standard Base64; raise ValueError if ``value`` is not."""
    if not BASE64.match(value):
        raise ValueError("not Base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError("not Base64") from exc


def new_rp_challenge() -> str:
    """Return a fresh ``rpChallenge``: 64 random bytes, Base64 (88 characters)."""
    return b64(secrets.token_bytes(64))


def encode_interactions(interactions: tuple[dict[str, str], ...]) -> str:
    """Return the ``interactions`` request field: Base64 of the JSON array (keep this exact string)."""
    return b64(json.dumps(list(interactions), ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def verification_code(rp_challenge: str) -> str:
    """The notification flow's 4-digit code: the last two bytes of SHA-256 over the decoded ``rpChallenge``."""
    digest = hashlib.sha256(base64.b64decode(rp_challenge)).digest()
    return f"{int.from_bytes(digest[-2:], 'big') % 10000:04d}"


def acsp_v2_payload(*, scheme_name: str, server_random: str, rp_challenge: str, user_challenge: str,
                    relying_party_name: str, interactions: str, interaction_type_used: str,
                    initial_callback_url: str, flow_type: str, brokered_rp_name: str = "") -> bytes:
    """The data the app signs in an ``ACSP_V2`` authentication (``signature_protocols.html``).

    Base64 values are used exactly as sent or received; the callback URL only for Web2App and App2App flows.
    """
    fields_ = (scheme_name, SIGNATURE_PROTOCOL, server_random, rp_challenge, user_challenge,
               b64(relying_party_name.encode("utf-8")), b64(brokered_rp_name.encode("utf-8")),
               b64(hashlib.sha256(interactions.encode("ascii")).digest()), interaction_type_used,
               initial_callback_url if flow_type in SAME_DEVICE else "", flow_type)
    return "|".join(fields_).encode("utf-8")


def auth_code(*, session_secret: str, scheme_name: str, rp_challenge: str, relying_party_name: str,
              interactions: str, initial_callback_url: str, unprotected_link: str, brokered_rp_name: str = "") -> str:
    """The device link's ``authCode``: HMAC-SHA256 keyed with the session secret, Base64url without padding."""
    payload = "|".join((scheme_name, SIGNATURE_PROTOCOL, rp_challenge, b64(relying_party_name.encode("utf-8")),
                        b64(brokered_rp_name.encode("utf-8")), interactions, initial_callback_url, unprotected_link))
    return b64url(hmac.new(base64.b64decode(session_secret), payload.encode("utf-8"), hashlib.sha256).digest())


def session_secret_digest(session_secret: str) -> str:
    """The ``sessionSecretDigest`` a same-device callback must carry."""
    return b64url(hashlib.sha256(base64.b64decode(session_secret)).digest())


@dataclass(frozen=True)
class SmartIdConfig:
    """Where the RP API is and who we are to it.

    ``trust_anchors_pem`` are the CA certificates that issue Smart-ID authentication certificates (each item may
    hold several PEM certificates). ``scheme_name`` is ``smart-id`` in LIVE, ``smart-id-demo`` in DEMO and the
    simulator. ``poll_timeout_ms`` is the long poll of each status call (1000–120000).
    """

    base_url: str
    relying_party_uuid: str
    relying_party_name: str
    trust_anchors_pem: tuple[bytes, ...]
    certificate_level: str = "QUALIFIED"
    scheme_name: str = "smart-id"
    poll_timeout_ms: int = 5000
    http_timeout: float = 10.0
    fallback_v2_url: str | None = None  # RP API v2, used when v3 is unavailable (notification flow only)

    def __post_init__(self) -> None:
        """Refuse a configuration the API would refuse later."""
        if self.certificate_level not in LEVELS:
            raise ValueError("certificate_level must be ADVANCED or QUALIFIED")
        if not 1000 <= self.poll_timeout_ms <= 120000:
            raise ValueError("poll_timeout_ms must be between 1000 and 120000")
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError("base_url must be an http(s) URL")
        if not self.relying_party_uuid or not self.relying_party_name:
            raise ValueError("relying_party_uuid and relying_party_name are required")


@dataclass(frozen=True)
class SmartIdSession:
    """A started Smart-ID authentication, as the identity service stores it between page loads (server-side).

    The fields after ``received_at`` are what verification needs later: the person asked for (notification), the
    exact ``interactions`` string sent, and for device links the callback URL and the link base the API returned.
    """

    session_id: str
    rp_challenge: str
    flow: str
    verification_code: str | None
    session_token: str | None
    session_secret: str | None
    received_at: float
    personal_code: str | None = None
    interactions: str = ""
    initial_callback_url: str | None = None
    device_link_base: str | None = None
    protocol: str = "v3"  # "v2" when started on the fallback; ``rp_challenge`` then holds the signed hash

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (it contains the session secret: keep it server-side)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SmartIdSession:
        """Rebuild a session from ``to_dict``'s output; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in d.items() if key in known})


def load_anchors(pems: tuple[bytes, ...]) -> tuple[x509.Certificate, ...]:
    """Parse the trust anchors; raise ValueError unless there is one and each is a CA certificate."""
    anchors = tuple(cert for pem in pems for cert in x509.load_pem_x509_certificates(pem))
    if not anchors:
        raise ValueError("at least one trust anchor is required")
    for anchor in anchors:
        constraints = extension(anchor, x509.BasicConstraints)
        if constraints is None or not constraints.ca:
            raise ValueError(f"trust anchor {anchor.subject.rfc4514_string()} is not a CA certificate")
    return anchors


def check_chain(cert: x509.Certificate, anchors: tuple[x509.Certificate, ...], now: datetime) -> None:
    """Require ``cert`` to be signed by a configured anchor, and both to be valid at ``now``."""
    issuer = next((anchor for anchor in anchors if signed_by(cert, anchor)), None)
    if issuer is None:
        raise reject("untrusted_certificate", "not issued by a configured trust anchor")
    if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
        raise reject("untrusted_certificate", "the issuing CA certificate is not valid now")
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise reject("expired_certificate", f"valid until {cert.not_valid_after_utc:%Y-%m-%d}")


def signed_by(cert: x509.Certificate, anchor: x509.Certificate) -> bool:
    """Whether ``anchor`` issued ``cert`` (names match and its key made the signature)."""
    try:
        cert.verify_directly_issued_by(anchor)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def extension(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> Any:
    """Return the value of an extension of ``cert``, or None."""
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def certificate_level(cert: x509.Certificate) -> str:
    """The level the certificate's policies prove; reject a certificate that is not Smart-ID authentication."""
    policies = extension(cert, x509.CertificatePolicies)
    oids = {p.policy_identifier.dotted_string for p in policies} if policies else set()
    for level in ("QUALIFIED", "ADVANCED"):
        if POLICIES[level] <= oids:
            return level
    raise reject("not_smartid_certificate", "no Smart-ID authentication policy")


def check_key_purpose(cert: x509.Certificate) -> None:
    """Require an authentication key: digitalSignature, an authentication EKU, not a CA."""
    usage = extension(cert, x509.KeyUsage)
    purposes = extension(cert, x509.ExtendedKeyUsage)
    constraints = extension(cert, x509.BasicConstraints)
    if usage is None or not usage.digital_signature:
        raise reject("not_smartid_certificate", "key usage lacks digitalSignature")
    if purposes is None or not AUTH_KEY_PURPOSES & set(purposes):
        raise reject("not_smartid_certificate", "no authentication extended key usage")
    if constraints is not None and constraints.ca:
        raise reject("not_smartid_certificate", "a CA certificate")


def subject_value(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    """The single value of a subject attribute, or an empty string."""
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value).strip() if len(values) == 1 else ""


def identity_of(cert: x509.Certificate) -> tuple[str, str, str]:
    """Return (personal code normalised, given name, family name) from the certificate subject."""
    serial = subject_value(cert, NameOID.SERIAL_NUMBER)
    given, family = subject_value(cert, NameOID.GIVEN_NAME), subject_value(cert, NameOID.SURNAME)
    if not serial.startswith("PNOLV-"):
        raise reject("unsupported_identity", "not a Latvian personal number")
    try:
        code = normalise_personal_code(serial)
    except ValueError as exc:
        raise reject("unsupported_identity", str(exc)) from exc
    if not given or not family:
        raise reject("unsupported_identity", "no given name or surname")
    return code, given, family


def signature_hash(signature: Mapping[str, Any]) -> hashes.HashAlgorithm:
    """Check the answer's signature algorithm and parameters are exactly what we asked for; return the hash."""
    params = signature.get("signatureAlgorithmParameters")
    if signature.get("signatureAlgorithm") != SIGNATURE_ALGORITHM or not isinstance(params, dict):
        raise reject("bad_signature", "not rsassa-pss")
    name = params.get("hashAlgorithm")
    mask = params.get("maskGenAlgorithm")
    if name != HASH_ALGORITHM or not isinstance(mask, dict):
        raise reject("bad_signature", "hash algorithm differs from the request")
    algorithm = HASH_ALGORITHMS[name]()
    mask_params = mask.get("parameters")
    if (mask.get("algorithm") != "id-mgf1" or not isinstance(mask_params, dict)
            or mask_params.get("hashAlgorithm") != name):
        raise reject("bad_signature", "mask generation is not MGF1 with the same hash")
    if params.get("saltLength") != algorithm.digest_size or params.get("trailerField") != "0xbc":
        raise reject("bad_signature", "salt length or trailer field")
    return algorithm


def verify_pss(cert: x509.Certificate, value: str, payload: bytes, algorithm: hashes.HashAlgorithm) -> None:
    """Verify an RSASSA-PSS signature (MGF1 with the same hash, salt of the hash's length) over ``payload``."""
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        raise reject("bad_signature", "not an RSA key of at least 2048 bits")
    try:
        signature = b64decode(value)
    except ValueError as exc:
        raise reject("bad_signature", "signature value is not Base64") from exc
    if len(signature) != (key.key_size + 7) // 8:
        raise reject("bad_signature", "signature length differs from the key's")
    try:
        key.verify(signature, payload, padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size),
                   algorithm)
    except InvalidSignature as exc:
        raise reject("bad_signature", "RSASSA-PSS verification failed") from exc


def mapping(value: object, what: str) -> Mapping[str, Any]:
    """``value`` as a JSON object, or ``invalid_response``."""
    if not isinstance(value, dict):
        raise reject("invalid_response", f"{what} is missing or not an object")
    return value


def required_text(value: object, what: str) -> str:
    """``value`` as a non-empty string, or ``invalid_response``."""
    if not isinstance(value, str) or not value:
        raise reject("invalid_response", f"{what} is missing or not a string")
    return value


class SmartIdClient:
    """A Smart-ID RP API v3 client for authentication (see the module docstring for the flows)."""

    def __init__(self, config: SmartIdConfig, session: requests.Session | None = None) -> None:
        """Check the configuration and its trust anchors; ``session`` lets the caller pin TLS or reuse connections."""
        self._config = config
        self._anchors = load_anchors(config.trust_anchors_pem)
        self._http = session if session is not None else requests.Session()
        self._owns_http = session is None

    def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> SmartIdClient:
        """Use the client as a context manager that closes it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the client."""
        self.close()

    def start_notification(self, personal_code: str) -> SmartIdSession:
        """Send a push to the Smart-ID app of the person with this Latvian personal code (``PNOLV-…``)."""
        try:
            code = normalise_personal_code(personal_code)
        except ValueError as exc:
            raise failure("invalid_personal_code") from exc
        rp_challenge = new_rp_challenge()
        interactions = encode_interactions(NOTIFICATION_INTERACTIONS)
        body = {**self._request_body(rp_challenge, interactions), "vcType": "numeric4"}
        try:
            answer = self._call("POST", f"/authentication/notification/etsi/PNOLV-{code}", "start", json=body)
        except LoginFailed as exc:
            if self._config.fallback_v2_url and exc.code in FALLBACK_ON:
                log.warning("Smart-ID v3 unavailable (%s): starting on the v2 API", exc.code)
                return self._start_notification_v2(code)
            raise
        session = SmartIdSession(session_id=self._session_id(answer), rp_challenge=rp_challenge, flow="notification",
                                 verification_code=verification_code(rp_challenge), session_token=None,
                                 session_secret=None, received_at=time.time(), personal_code=code,
                                 interactions=interactions)
        log.info("Smart-ID notification session %s started", session.session_id)
        return session

    def _start_notification_v2(self, code: str) -> SmartIdSession:
        """Start the notification flow on RP API v2 (the fallback)."""
        signed_hash = b64(hashlib.sha512(secrets.token_bytes(64)).digest())
        body = {"relyingPartyUUID": self._config.relying_party_uuid,
                "relyingPartyName": self._config.relying_party_name,
                "certificateLevel": self._config.certificate_level, "hash": signed_hash, "hashType": "SHA512",
                "allowedInteractionsOrder": [{"type": "verificationCodeChoice", "displayText60": DISPLAY_TEXT_60},
                                             {"type": "displayTextAndPIN", "displayText60": DISPLAY_TEXT_60}]}
        answer = self._call("POST", f"/authentication/etsi/PNOLV-{code}", "start", json=body,
                            base=self._config.fallback_v2_url)
        session = SmartIdSession(session_id=self._session_id(answer), rp_challenge=signed_hash, flow="notification",
                                 verification_code=verification_code(signed_hash), session_token=None,
                                 session_secret=None, received_at=time.time(), personal_code=code, protocol="v2")
        log.info("Smart-ID v2 notification session %s started", session.session_id)
        return session

    def start_device_link(self, *, initial_callback_url: str | None = None) -> SmartIdSession:
        """Start an anonymous device-link session: a QR code, or with ``initial_callback_url`` also Web2App/App2App.

        The callback URL must be https, without ``#`` or a raw ``|``, and should carry a random value the caller
        also puts into the person's browser cookie.
        """
        if initial_callback_url is not None:
            check_callback_url(initial_callback_url)
        rp_challenge = new_rp_challenge()
        interactions = encode_interactions(DEVICE_LINK_INTERACTIONS)
        body = self._request_body(rp_challenge, interactions)
        if initial_callback_url is not None:
            body["initialCallbackUrl"] = initial_callback_url
        answer = self._call("POST", "/authentication/device-link/anonymous", "start", json=body)
        token = required_text(answer.get("sessionToken"), "sessionToken")
        secret = required_text(answer.get("sessionSecret"), "sessionSecret")
        base = required_text(answer.get("deviceLinkBase"), "deviceLinkBase")
        if not SESSION_TOKEN.match(token) or not BASE64.match(secret) or len(secret) < 24:
            raise reject("invalid_response", "sessionToken or sessionSecret malformed")
        if not base.startswith("https://") or any(c in base for c in "?#"):
            raise reject("invalid_response", "deviceLinkBase is not a plain https URL")
        session = SmartIdSession(session_id=self._session_id(answer), rp_challenge=rp_challenge, flow="device_link",
                                 verification_code=None, session_token=token, session_secret=secret,
                                 received_at=time.time(), interactions=interactions,
                                 initial_callback_url=initial_callback_url, device_link_base=base)
        log.info("Smart-ID device-link session %s started", session.session_id)
        return session

    def device_link_url(self, session: SmartIdSession, *, now: float | None = None, kind: str = "QR",
                        lang: str = "lav") -> str:
        """The device link to show now: ``kind`` QR (regenerate it every second), Web2App or App2App.

        ``lang`` is the ISO 639-2 code of the app's language (``lav``, ``eng``, ``rus``).
        """
        if session.flow != "device_link" or not (session.session_token and session.session_secret
                                                 and session.device_link_base):
            raise ValueError("not a device-link session")
        if kind not in DEVICE_LINK_KINDS or not LANGUAGE.match(lang):
            raise ValueError("kind must be QR, Web2App or App2App and lang an ISO 639-2 code")
        if kind in SAME_DEVICE and not session.initial_callback_url:
            raise ValueError("Web2App and App2App links need a session started with initial_callback_url")
        query = [f"deviceLinkType={kind}"]
        if kind == "QR":
            elapsed = (time.time() if now is None else now) - session.received_at
            query.append(f"elapsedSeconds={max(0, int(elapsed))}")
        query += [f"sessionToken={session.session_token}", "sessionType=auth", "version=1.0", f"lang={lang}"]
        unprotected = f"{session.device_link_base}?{'&'.join(query)}"
        code = auth_code(session_secret=session.session_secret, scheme_name=self._config.scheme_name,
                         rp_challenge=session.rp_challenge, relying_party_name=self._config.relying_party_name,
                         interactions=session.interactions,
                         initial_callback_url="" if kind == "QR" else session.initial_callback_url or "",
                         unprotected_link=unprotected)
        return f"{unprotected}&authCode={code}"

    def poll(self, session: SmartIdSession, *,
             callback: Mapping[str, str] | None = None) -> VerifiedIdentity | None:
        """Ask once (a long poll) how the session is going.

        Returns None while it runs, and also for a Web2App/App2App completion until it is polled with the query
        parameters of the app's callback (``sessionSecretDigest``, ``userChallengeVerifier``) as ``callback``.
        Returns the identity once every check has passed; raises ``LoginFailed`` for every other outcome.
        """
        if not SESSION_ID.match(session.session_id):
            raise ValueError("malformed session id")
        config = self._config
        answer = self._call("GET", f"/session/{session.session_id}", "poll",
                            params={"timeoutMs": config.poll_timeout_ms},
                            timeout=(config.http_timeout, config.http_timeout + config.poll_timeout_ms / 1000),
                            base=config.fallback_v2_url if session.protocol == "v2" else None)
        state = answer.get("state")
        if state == "RUNNING":
            return None
        if state != "COMPLETE":
            raise reject("invalid_response", "state is neither RUNNING nor COMPLETE")
        result = mapping(answer.get("result"), "result")
        if result.get("endResult") != "OK":
            raise end_result_failure(result)
        if session.protocol == "v2":
            return self._verify_v2(session, answer, result)
        signature = mapping(answer.get("signature"), "signature")
        flow_type = self._check_flow_type(session, signature.get("flowType"))
        if flow_type in SAME_DEVICE and callback is None:
            return None
        return self._verify(session, answer, result, signature, callback or {})

    def _request_body(self, rp_challenge: str, interactions: str) -> dict[str, Any]:
        """The fields every authentication request carries."""
        return {
            "relyingPartyUUID": self._config.relying_party_uuid,
            "relyingPartyName": self._config.relying_party_name,
            "certificateLevel": self._config.certificate_level,
            "signatureProtocol": SIGNATURE_PROTOCOL,
            "signatureProtocolParameters": {
                "rpChallenge": rp_challenge,
                "signatureAlgorithm": SIGNATURE_ALGORITHM,
                "signatureAlgorithmParameters": {"hashAlgorithm": HASH_ALGORITHM},
            },
            "interactions": interactions,
        }

    def _call(self, method: str, path: str, stage: str, *, base: str | None = None,
              **kwargs: Any) -> Mapping[str, Any]:
        """Call the API (v3, or ``base``) and return its JSON object; every failure becomes ``LoginFailed``."""
        kwargs.setdefault("timeout", self._config.http_timeout)
        try:
            response = self._http.request(method, (base or self._config.base_url).rstrip("/") + path,
                                          headers={"Accept": "application/json"}, **kwargs)
        except requests.Timeout as exc:
            raise reject("service_timeout", f"{stage}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise reject("service_unavailable", f"{stage}: {type(exc).__name__}") from exc
        with response:
            if response.status_code != 200:
                log.warning("Smart-ID %s answered HTTP %s", stage, response.status_code)
                raise http_failure(response.status_code, stage)
            try:
                answer = response.json()
            except ValueError as exc:
                raise reject("invalid_response", f"{stage}: not JSON") from exc
        return mapping(answer, f"{stage} answer")

    @staticmethod
    def _session_id(answer: Mapping[str, Any]) -> str:
        """The ``sessionID`` of a creation answer."""
        session_id = required_text(answer.get("sessionID"), "sessionID")
        if not SESSION_ID.match(session_id):
            raise reject("invalid_response", "malformed sessionID")
        return session_id

    @staticmethod
    def _check_flow_type(session: SmartIdSession, flow_type: object) -> str:
        """Require the ``flowType`` to be one this session offered."""
        if session.flow == "notification":
            offered: tuple[str, ...] = ("Notification",)
        else:
            offered = DEVICE_LINK_KINDS if session.initial_callback_url else ("QR",)
        if flow_type not in offered:
            raise reject("unexpected_flow_type", f"flowType {str(flow_type)[:20]!r} was not offered")
        return str(flow_type)

    def _verify(self, session: SmartIdSession, answer: Mapping[str, Any], result: Mapping[str, Any],
                signature: Mapping[str, Any], callback: Mapping[str, str]) -> VerifiedIdentity:
        """Every check of an ``OK`` answer, in the order of ``response_verification.html``."""
        if answer.get("signatureProtocol") != SIGNATURE_PROTOCOL:
            raise reject("invalid_response", "signatureProtocol is not ACSP_V2")
        document_number = required_text(result.get("documentNumber"), "documentNumber")
        cert_info = mapping(answer.get("cert"), "cert")
        server_random = required_text(signature.get("serverRandom"), "serverRandom")
        user_challenge = required_text(signature.get("userChallenge"), "userChallenge")
        interaction = required_text(answer.get("interactionTypeUsed"), "interactionTypeUsed")
        if not BASE64.match(server_random) or len(server_random) < 24 or not USER_CHALLENGE.match(user_challenge):
            raise reject("bad_signature", "serverRandom or userChallenge malformed")
        if interaction not in offered_interactions(session.interactions):
            raise reject("bad_signature", "interactionTypeUsed was not offered")
        flow_type = str(signature["flowType"])  # checked by _check_flow_type
        if flow_type in SAME_DEVICE:
            check_callback(session, callback, user_challenge)
        cert = parse_certificate(cert_info.get("value"))
        check_chain(cert, self._anchors, datetime.now(UTC))
        level = self._check_level(cert, cert_info.get("certificateLevel"))
        check_key_purpose(cert)
        personal_code, given_name, family_name = identity_of(cert)
        if session.personal_code is not None and personal_code != session.personal_code:
            raise reject("identity_mismatch", "the certificate is not the requested person's")
        payload = acsp_v2_payload(scheme_name=self._config.scheme_name, server_random=server_random,
                                  rp_challenge=session.rp_challenge, user_challenge=user_challenge,
                                  relying_party_name=self._config.relying_party_name,
                                  interactions=session.interactions, interaction_type_used=interaction,
                                  initial_callback_url=session.initial_callback_url or "", flow_type=flow_type)
        verify_pss(cert, required_text(signature.get("value"), "signature value"), payload, signature_hash(signature))
        log.info("Smart-ID session %s verified (%s, %s)", session.session_id, flow_type, level)
        return VerifiedIdentity(personal_code=personal_code, given_name=given_name, family_name=family_name,
                                method="smart_id", acr=LOA_SUBSTANTIAL, amr=("smartid",),
                                detail={"document_number": document_number, "certificate_level": level,
                                        "flow": session.flow, "flow_type": flow_type,
                                        "interaction_type_used": interaction})

    def _verify_v2(self, session: SmartIdSession, answer: Mapping[str, Any],
                   result: Mapping[str, Any]) -> VerifiedIdentity:
        """Every check of a v2 ``OK`` answer (SK's RP API v2 documentation, §2.3.13.3): the certificate as for
        v3, and a PKCS#1 v1.5 signature over the very hash this session sent."""
        document_number = required_text(result.get("documentNumber"), "documentNumber")
        cert_info = mapping(answer.get("cert"), "cert")
        signature = mapping(answer.get("signature"), "signature")
        cert = parse_certificate(cert_info.get("value"))
        check_chain(cert, self._anchors, datetime.now(UTC))
        level = self._check_level(cert, cert_info.get("certificateLevel"))
        check_key_purpose(cert)
        personal_code, given_name, family_name = identity_of(cert)
        if personal_code != session.personal_code:
            raise reject("identity_mismatch", "the certificate is not the requested person's")
        algorithm = V2_SIGNATURE_ALGORITHMS.get(str(signature.get("algorithm")))
        if algorithm is None:
            raise reject("bad_signature", "unexpected v2 signature algorithm")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise reject("bad_signature", "not an RSA key")
        try:
            key.verify(b64decode(required_text(signature.get("value"), "signature value")),
                       base64.b64decode(session.rp_challenge), padding.PKCS1v15(), Prehashed(algorithm()))
        except (InvalidSignature, ValueError) as exc:
            raise reject("bad_signature", "the v2 signature does not verify") from exc
        log.info("Smart-ID v2 session %s verified (%s)", session.session_id, level)
        return VerifiedIdentity(personal_code=personal_code, given_name=given_name, family_name=family_name,
                                method="smart_id", acr=LOA_SUBSTANTIAL, amr=("smartid",),
                                detail={"document_number": document_number, "certificate_level": level,
                                        "flow": session.flow, "api": "v2"})

    def _check_level(self, cert: x509.Certificate, claimed: object) -> str:
        """The lower of the claimed level and the certificate's; at least the configured one."""
        proven = certificate_level(cert)
        if claimed not in LEVELS:
            raise reject("invalid_response", "certificateLevel missing or unknown")
        level = min(str(claimed), proven, key=LEVELS.__getitem__)
        if LEVELS[level] < LEVELS[self._config.certificate_level]:
            raise reject("certificate_level_too_low", f"{level} < {self._config.certificate_level}")
        return level


def offered_interactions(interactions: str) -> set[str]:
    """The interaction types in the session's ``interactions`` string."""
    try:
        decoded = json.loads(base64.b64decode(interactions))
    except ValueError:
        return set()
    if not isinstance(decoded, list):
        return set()
    return {str(item.get("type")) for item in decoded if isinstance(item, dict)}


def parse_certificate(value: object) -> x509.Certificate:
    """The answer's ``cert.value`` (Base64 DER) as a certificate."""
    try:
        return x509.load_der_x509_certificate(b64decode(required_text(value, "cert value")))
    except ValueError as exc:
        raise reject("invalid_response", "cert value is not a DER certificate") from exc


def check_callback_url(url: str) -> None:
    """Raise ValueError unless ``url`` is usable as ``initialCallbackUrl``."""
    if not url.startswith("https://") or "#" in url or "|" in url or len(url) > 1800:
        raise ValueError("initial_callback_url must be https, at most 1800 characters, without '#' or a raw '|'")


def check_callback(session: SmartIdSession, callback: Mapping[str, str], user_challenge: str) -> None:
    """Verify a same-device callback: the session secret's digest and the user challenge's verifier."""
    digest = callback.get("sessionSecretDigest", "")
    verifier = callback.get("userChallengeVerifier", "")
    expected = session_secret_digest(session.session_secret or "")
    if not hmac.compare_digest(digest.encode("ascii", "replace"), expected.encode("ascii")):
        raise reject("callback_mismatch", "sessionSecretDigest does not match")
    if not verifier or not hmac.compare_digest(b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest()),
                                               user_challenge):
        raise reject("callback_mismatch", "userChallengeVerifier does not match the userChallenge")
