"""A Smart-ID simulator speaking the Relying Party API v3 (docs/eid.md, "Smart-ID"), as SK's DEMO environment does.

RP API (base URL ``http://HOST:PORT/v3``; answers and errors as the real API, errors as RFC 9457 problem+json):

* ``POST /v3/authentication/notification/etsi/PNOLV-…`` and ``…/notification/document/<documentNumber>``;
* ``POST /v3/authentication/device-link/anonymous``, ``…/device-link/etsi/PNOLV-…``,
  ``…/device-link/document/<documentNumber>``;
* ``GET /v3/session/<sessionID>?timeoutMs=1000..120000`` – long poll; completed sessions are kept 5 minutes.

Relying parties are known by UUID and name: an unknown UUID is answered 403, a name that does not match the UUID
(case-insensitively) or a source address outside ``SIM_SMARTID_ALLOWED_IPS`` 401, ``certificateLevel: ADVANCED``
from the DEMO UUID 403, and a person who has only an ADVANCED account asked for QUALIFIED 404. The app signs the
ACSP_V2 payload with RSASSA-PSS over the *registered* RP name, byte for byte (a client sending another letter case
is let in but cannot verify the signature, as the real service warns).

Sessions complete by themselves after ``SIM_SMARTID_DELAY`` seconds with the demo person's outcome (DEMO_PERSONS,
mirroring SK's Latvian test accounts). An anonymous device-link session is answered by
``SIM_SMARTID_ANONYMOUS_DOCUMENT`` (as if it scanned the QR code); when that is empty, or for a session started
after ``{"awaitDeviceLink": true}``, nobody answers until the device link is submitted to the automated testing
interface, as on DEMO:

* ``POST /mock/device-link`` ``{"documentNumber", "deviceLink", "flowType": "QR"|"Web2App"|"App2App"}`` checks the
  link (base, parameters, ``elapsedSeconds`` freshness, ``authCode``) like the app does and answers 400 if it is
  wrong; for a successful same-device flow it answers the ``callbackUrl`` the app would open.

Test control (not part of the real API):

* ``GET /test/ca.pem`` – the issuing CA to configure as trust anchor; ``GET /test/untrusted-ca.pem`` – another CA
  with the same name but its own key.
* ``POST /test/next-session`` – how the next session behaves (one shot; ``DELETE`` forgets it):
  ``httpStatus`` (answer its creation with that status), ``statusHttpStatus`` (answer its status requests so),
  ``endResult`` and ``interaction`` (force an outcome), ``fault`` (one of FAULTS: how an OK answer is spoilt),
  ``documentNumber`` (who answers an anonymous session), ``awaitDeviceLink``.
* ``GET /test/sessions/<sessionID>`` – what the phone shows: the verification code, the person, the flow.

Configuration: ``SIM_SMARTID_DELAY`` (default 1.5), ``SIM_SMARTID_SCHEME_NAME`` (``smart-id-demo``),
``SIM_SMARTID_RELYING_PARTIES`` (``uuid:name;uuid:name``, default DEMO's), ``SIM_SMARTID_ALLOWED_IPS``
(comma-separated, default any), ``SIM_SMARTID_ANONYMOUS_DOCUMENT`` (``PNOLV-040404-10003-DEMO-Q``),
``SIM_SMARTID_DEVICE_LINK_BASE`` (``https://smart-id.com/device-link``). Keys and certificates are generated at
start-up; state is in memory: it is a simulator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID
from flask import Flask, Response, jsonify, request

DEMO_RP_UUID = "00000000-0000-4000-8000-000000000000"
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA-256": hashes.SHA256, "SHA-384": hashes.SHA384, "SHA-512": hashes.SHA512,
    "SHA3-256": hashes.SHA3_256, "SHA3-384": hashes.SHA3_384, "SHA3-512": hashes.SHA3_512,
}
V2_HASHES = {"SHA256": "SHA-256", "SHA384": "SHA-384", "SHA512": "SHA-512"}
V2_TEXT_FIELDS = {"displayTextAndPIN": ("displayText60", 60), "verificationCodeChoice": ("displayText60", 60),
                  "confirmationMessage": ("displayText200", 200),
                  "confirmationMessageAndVerificationCodeChoice": ("displayText200", 200)}
V2_REFUSED = {"displayTextAndPIN": "USER_REFUSED_DISPLAYTEXTANDPIN", "verificationCodeChoice": "USER_REFUSED_VC_CHOICE",
              "confirmationMessage": "USER_REFUSED_CONFIRMATIONMESSAGE",
              "confirmationMessageAndVerificationCodeChoice": "USER_REFUSED_CONFIRMATIONMESSAGE_WITH_VC_CHOICE"}
TEXT_FIELDS = {"displayTextAndPIN": ("displayText60", 60), "confirmationMessage": ("displayText200", 200),
               "confirmationMessageAndVerificationCodeChoice": ("displayText200", 200)}
DEVICE_LINK_INTERACTIONS = frozenset({"displayTextAndPIN", "confirmationMessage"})
END_RESULTS = frozenset({"OK", "USER_REFUSED", "TIMEOUT", "DOCUMENT_UNUSABLE", "WRONG_VC",
                         "REQUIRED_INTERACTION_NOT_SUPPORTED_BY_APP", "USER_REFUSED_CERT_CHOICE",
                         "USER_REFUSED_INTERACTION", "PROTOCOL_FAILURE", "EXPECTED_LINKED_SESSION", "SERVER_ERROR",
                         "ACCOUNT_UNUSABLE"})
FAULTS = frozenset({"tampered_signature", "untrusted_certificate", "expired_certificate", "level_too_low",
                    "wrong_person", "wrong_algorithm", "wrong_flow_type", "not_smartid_certificate"})
TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
          471: "No suitable account of requested type found", 472: "Person should view app or self-service portal",
          480: "Client too old", 500: "Internal Server Error", 580: "System under maintenance"}
QUALIFIED_POLICIES = ("1.3.6.1.4.1.10015.17.2", "0.4.0.2042.1.2")
ADVANCED_POLICIES = ("1.3.6.1.4.1.10015.17.1", "0.4.0.2042.1.1")
SMART_ID_AUTH_EKU = x509.ObjectIdentifier("1.3.6.1.4.1.62306.5.7.0")
SESSION_LIFETIME = 120.0  # a session nobody answers ends with TIMEOUT
RESULT_KEPT = 300.0  # a completed session can be queried for 5 minutes, then 404
BASE64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
SEMANTICS_ID = re.compile(r"^(PNO|IDC|PAS)[A-Z]{2}-[A-Za-z0-9-]+$")


@dataclass(frozen=True)
class DemoPerson:
    """A Smart-ID account of SK's DEMO environment and how its sessions end."""

    document_number: str
    given_name: str
    surname: str
    level: str = "QUALIFIED"
    end_result: str = "OK"
    refused_interaction: str | None = None

    @property
    def identifier(self) -> str:
        """The ETSI semantics identifier, e.g. ``PNOLV-040404-10003``."""
        return "-".join(self.document_number.split("-")[:3])


DEMO_PERSONS = (
    DemoPerson("PNOLV-040404-10003-DEMO-Q", "OK", "TESTNUMBER"),
    DemoPerson("PNOLV-050405-10009-DEM0-Q", "QUALIFIED OK1", "TESTNUMBER"),
    DemoPerson("PNOLV-320000-10003-DEMO-Q", "NEW CODE", "TESTNUMBER"),
    DemoPerson("PNOLV-020100-29990-MOCK-Q", "ADULT", "TESTNUMBER"),
    DemoPerson("PNOLV-329999-99901-MOCK-Q", "WITH DOB", "TESTNUMBER"),
    DemoPerson("PNOLV-329999-99709-MOCK-Q", "NO DOB", "TESTNUMBER"),
    DemoPerson("PNOLV-050404-19993-DEMO-NQ", "ADVANCED", "TESTNUMBER", level="ADVANCED"),
    DemoPerson("PNOLV-030403-10016-MOCK-Q", "REFUSED", "TESTNUMBER", end_result="USER_REFUSED"),
    DemoPerson("PNOLV-030403-10024-MOCK-Q", "REFUSED PIN", "TESTNUMBER", end_result="USER_REFUSED_INTERACTION",
               refused_interaction="displayTextAndPIN"),
    DemoPerson("PNOLV-030403-10032-MOCK-Q", "REFUSED VC", "TESTNUMBER", end_result="USER_REFUSED_INTERACTION",
               refused_interaction="verificationCodeChoice"),
    DemoPerson("PNOLV-030403-10040-MOCK-Q", "REFUSED CONFIRMATION", "TESTNUMBER",
               end_result="USER_REFUSED_INTERACTION", refused_interaction="confirmationMessage"),
    DemoPerson("PNOLV-030403-10059-MOCK-Q", "REFUSED CONFIRMATION VC", "TESTNUMBER",
               end_result="USER_REFUSED_INTERACTION",
               refused_interaction="confirmationMessageAndVerificationCodeChoice"),
    DemoPerson("PNOLV-030403-10075-MOCK-Q", "WRONG VC", "TESTNUMBER", end_result="WRONG_VC"),
    DemoPerson("PNOLV-030403-10083-MOCK-Q", "TIMEOUT", "TESTNUMBER", end_result="TIMEOUT"),
)


@dataclass(frozen=True)
class RelyingParty:
    """A registered relying party."""

    uuid: str
    name: str


@dataclass(frozen=True)
class SimSettings:
    """The simulator's configuration (``from_env`` reads the ``SIM_SMARTID_*`` variables)."""

    relying_parties: tuple[RelyingParty, ...] = (RelyingParty(DEMO_RP_UUID, "DEMO"),)
    allowed_ips: frozenset[str] = frozenset()
    scheme_name: str = "smart-id-demo"
    delay: float = 1.5
    anonymous_document: str = "PNOLV-040404-10003-DEMO-Q"
    device_link_base: str = "https://smart-id.com/device-link"

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SimSettings:
        """Read the settings from the environment; unset variables keep their defaults."""
        defaults = cls()
        parties = tuple(RelyingParty(*entry.strip().split(":", 1))
                        for entry in env.get("SIM_SMARTID_RELYING_PARTIES", "").split(";") if ":" in entry)
        return cls(relying_parties=parties or defaults.relying_parties,
                   allowed_ips=frozenset(ip.strip() for ip in env.get("SIM_SMARTID_ALLOWED_IPS", "").split(",")
                                         if ip.strip()),
                   scheme_name=env.get("SIM_SMARTID_SCHEME_NAME", defaults.scheme_name),
                   delay=float(env.get("SIM_SMARTID_DELAY", defaults.delay)),
                   anonymous_document=env.get("SIM_SMARTID_ANONYMOUS_DOCUMENT", defaults.anonymous_document),
                   device_link_base=env.get("SIM_SMARTID_DEVICE_LINK_BASE", defaults.device_link_base))


@dataclass
class Script:
    """How the next session misbehaves (set through ``POST /test/next-session``)."""

    http_status: int | None = None
    status_http_status: int | None = None
    end_result: str | None = None
    interaction: str | None = None
    fault: str | None = None
    document_number: str | None = None
    await_device_link: bool = False


@dataclass
class SimSession:
    """A session as the simulated service keeps it."""

    id: str
    rp: RelyingParty
    flow: str  # "notification" | "device_link"
    rp_challenge: str
    hash_name: str
    interactions: str
    interaction_types: tuple[str, ...]
    callback_url: str | None
    person: DemoPerson | None
    script: Script
    created: float
    complete_at: float | None  # None: nobody has scanned the device link yet
    flow_type: str
    token: str | None = None
    secret: str | None = None
    device_link_base: str | None = None
    verifier: str = field(default_factory=lambda: b64url(secrets.token_bytes(32)))
    answer: dict[str, Any] | None = None
    completed: float | None = None
    v2_hash: bytes | None = None  # RP API v2: the hash to sign (its session's flow is "notification_v2")


class Problem(Exception):
    """An error answer of the RP API."""

    def __init__(self, status: int, detail: str = "", errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors

    def response(self) -> Response:
        """The RFC 9457 problem+json answer."""
        body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(self.status, "Error"),
                                "status": self.status, "detail": self.detail, "instance": request.path}
        if self.status == 400:
            body["errors"] = self.errors or []
        return Response(json.dumps(body), status=self.status, mimetype="application/problem+json")


def b64(data: bytes) -> str:
    """Standard Base64."""
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def shown_verification_code(rp_challenge: str) -> str:
    """The code the app shows in a notification authentication."""
    digest = hashlib.sha256(base64.b64decode(rp_challenge)).digest()
    return f"{int.from_bytes(digest[-2:], 'big') % 10000:04d}"


def signed_payload(*, scheme_name: str, server_random: str, rp_challenge: str, user_challenge: str, rp_name: str,
                   interactions: str, interaction_used: str, callback_url: str | None, flow_type: str) -> bytes:
    """The ACSP_V2 payload the app signs (no brokered RP: that field stays empty)."""
    same_device = flow_type in ("Web2App", "App2App")
    return "|".join((scheme_name, "ACSP_V2", server_random, rp_challenge, user_challenge,
                     b64(rp_name.encode()), "", b64(hashlib.sha256(interactions.encode()).digest()),
                     interaction_used, (callback_url or "") if same_device else "", flow_type)).encode()


def expected_auth_code(session: SimSession, scheme_name: str, unprotected: str, flow_type: str) -> str:
    """The authCode a correct device link of ``session`` carries."""
    callback = "" if flow_type == "QR" else session.callback_url or ""
    payload = "|".join((scheme_name, "ACSP_V2", session.rp_challenge, b64(session.rp.name.encode()), "",
                        session.interactions, callback, unprotected))
    key = base64.b64decode(session.secret or "")
    return b64url(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def name(common_name: str) -> x509.Name:
    """A CA's distinguished name."""
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Klients (simulator)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def new_key() -> rsa.RSAPrivateKey:
    """A fresh RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ca(common_name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A self-signed issuing CA."""
    key, now = new_key(), datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name(common_name)).issuer_name(name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def auth_key_usage() -> x509.KeyUsage:
    """digitalSignature only, as authentication certificates since April 2025."""
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                         encipher_only=False, decipher_only=False)


class Pki:
    """The simulator's CAs, the persons' keys and their authentication certificates."""

    CA_NAME = "Klients Smart-ID simulator EID-Q CA"

    def __init__(self) -> None:
        self.ca_key, self.ca = make_ca(self.CA_NAME)
        self.rogue_key, self.rogue_ca = make_ca(self.CA_NAME)  # same name, other key: not a trust anchor
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self._lock = threading.Lock()

    def key(self, person: DemoPerson) -> rsa.RSAPrivateKey:
        """The person's key, made on first use."""
        with self._lock:
            if person.document_number not in self._keys:
                self._keys[person.document_number] = new_key()
            return self._keys[person.document_number]

    def certificate(self, person: DemoPerson, *, level: str | None = None, rogue: bool = False,
                    expired: bool = False, smart_id: bool = True) -> x509.Certificate:
        """The person's authentication certificate (at ``level``, or spoilt as asked)."""
        now = datetime.now(UTC)
        start, end = (now - timedelta(days=1100), now - timedelta(days=1)) if expired else (
            now - timedelta(days=1), now + timedelta(days=1095))
        policies = QUALIFIED_POLICIES if (level or person.level) == "QUALIFIED" else ADVANCED_POLICIES
        builder = (x509.CertificateBuilder().subject_name(subject(person))
                   .issuer_name((self.rogue_ca if rogue else self.ca).subject)
                   .public_key(self.key(person).public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(start).not_valid_after(end)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(auth_key_usage(), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([SMART_ID_AUTH_EKU]), critical=False))
        if smart_id:
            builder = builder.add_extension(x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in policies]), critical=False)
        return builder.sign(self.rogue_key if rogue else self.ca_key, hashes.SHA256())


def subject(person: DemoPerson) -> x509.Name:
    """The subject of a Smart-ID authentication certificate."""
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, person.identifier[3:5]),
        x509.NameAttribute(NameOID.SURNAME, person.surname),
        x509.NameAttribute(NameOID.GIVEN_NAME, person.given_name),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, person.identifier),
        x509.NameAttribute(NameOID.COMMON_NAME, f"{person.surname},{person.given_name},{person.identifier}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "AUTHENTICATION"),
    ])


def parse_interactions(value: object, flow: str) -> tuple[str, ...]:
    """Validate the Base64 JSON ``interactions`` of a request; return their types in order."""
    if not isinstance(value, str) or not BASE64.match(value):
        raise Problem(400, "interactions must be Base64", [{"paramName": "interactions", "detail": "not Base64"}])
    try:
        items = json.loads(base64.b64decode(value))
    except ValueError as exc:
        raise Problem(400, "interactions must be a Base64 JSON array") from exc
    if not isinstance(items, list) or not items or not all(isinstance(item, dict) for item in items):
        raise Problem(400, "interactions must be a non-empty array of objects")
    types = tuple(str(item.get("type")) for item in items)
    allowed = DEVICE_LINK_INTERACTIONS if flow == "device_link" else frozenset(TEXT_FIELDS)
    if len(set(types)) != len(types) or not set(types) <= allowed:
        raise Problem(400, f"interaction types must be unique and among {sorted(allowed)}")
    for kind, item in zip(types, items, strict=True):
        text_field, limit = TEXT_FIELDS[kind]
        texts = {key for key in item if key.startswith("displayText")}
        if texts != {text_field} or not isinstance(item[text_field], str) or not 0 < len(item[text_field]) <= limit:
            raise Problem(400, f"{kind} needs {text_field} of 1..{limit} characters and no other text")
    return types


def parse_challenge(params: object) -> tuple[str, str]:
    """Validate ``signatureProtocolParameters``; return (rpChallenge, hash algorithm name)."""
    if not isinstance(params, dict):
        raise Problem(400, "signatureProtocolParameters is required")
    challenge = params.get("rpChallenge")
    algorithm_params = params.get("signatureAlgorithmParameters")
    if not isinstance(challenge, str) or not BASE64.match(challenge) or not 44 <= len(challenge) <= 88:
        raise Problem(400, "rpChallenge must be Base64 of 44..88 characters",
                      [{"paramName": "rpChallenge", "detail": "invalid"}])
    try:
        base64.b64decode(challenge, validate=True)
    except binascii.Error as exc:
        raise Problem(400, "rpChallenge must be Base64") from exc
    if params.get("signatureAlgorithm") != "rsassa-pss" or not isinstance(algorithm_params, dict):
        raise Problem(400, "signatureAlgorithm must be rsassa-pss with signatureAlgorithmParameters")
    hash_name = algorithm_params.get("hashAlgorithm")
    if hash_name not in HASHES:
        raise Problem(400, f"hashAlgorithm must be one of {sorted(HASHES)}")
    return challenge, str(hash_name)


def check_callback_url(url: object) -> str:
    """Validate an ``initialCallbackUrl``."""
    if not isinstance(url, str) or not url.startswith("https://") or "#" in url or "|" in url or len(url) > 1800:
        raise Problem(400, "initialCallbackUrl must be https, at most 1800 characters, without '#' or raw '|'")
    return url


class Simulator:
    """The simulated Smart-ID service: sessions, persons, PKI and the test controls."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.pki = Pki()
        self.persons = {p.document_number: p for p in DEMO_PERSONS}
        self.sessions: dict[str, SimSession] = {}
        self.next_script = Script()
        self.changed = threading.Condition()

    # --- relying party, request and person -------------------------------------------------------------------

    def authenticate(self, body: Mapping[str, Any], level: str) -> RelyingParty:
        """Identify the RP by UUID, name and source address, and check it may ask for ``level``."""
        rp_uuid, rp_name = body.get("relyingPartyUUID"), body.get("relyingPartyName")
        if not isinstance(rp_uuid, str) or not isinstance(rp_name, str) or not rp_name:
            raise Problem(400, "relyingPartyUUID and relyingPartyName are required")
        try:
            uuid.UUID(rp_uuid)
        except ValueError as exc:
            raise Problem(400, "relyingPartyUUID must be a UUID") from exc
        rp = next((p for p in self.settings.relying_parties if p.uuid == rp_uuid.lower()), None)
        if rp is None:
            raise Problem(403, "Relying Party with given UUID does not exist")
        if self.settings.allowed_ips and request.remote_addr not in self.settings.allowed_ips:
            raise Problem(401, "source address and relyingPartyUUID do not match")
        if rp_name.casefold() != rp.name.casefold():
            raise Problem(401, "relyingPartyName does not match relyingPartyUUID")
        if level == "ADVANCED" and rp.uuid == DEMO_RP_UUID:
            raise Problem(403, "Relying Party has no permission to use ADVANCED certificates")
        return rp

    def person_by_identifier(self, identifier: str, level: str) -> DemoPerson:
        """The account of a semantics identifier that has the level asked for."""
        if not SEMANTICS_ID.match(identifier):
            raise Problem(400, "not an ETSI natural person semantics identifier")
        accounts = [p for p in DEMO_PERSONS if p.identifier == identifier]
        suitable = [p for p in accounts if level == "ADVANCED" or p.level == "QUALIFIED"]
        if not suitable:
            raise Problem(404, "no suitable account" if accounts else "person not found")
        return suitable[0]

    def person_by_document(self, document_number: str, level: str) -> DemoPerson:
        """The account of a document number, if it has the level asked for."""
        person = self.persons.get(document_number)
        if person is None or (level == "QUALIFIED" and person.level != "QUALIFIED"):
            raise Problem(404, "document not found")
        return person

    def take_script(self) -> Script:
        """The next session's script (consumed)."""
        with self.changed:
            script, self.next_script = self.next_script, Script()
        if script.http_status is not None:
            raise Problem(script.http_status, "as told by /test/next-session")
        return script

    def start(self, flow: str, target: tuple[str, str] | None) -> Response:
        """Create an authentication session; ``target`` is (``etsi``|``document``, value) or None (anonymous)."""
        script = self.take_script()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Problem(400, "a JSON object is required")
        level = body.get("certificateLevel", "QUALIFIED")
        if level not in ("ADVANCED", "QUALIFIED"):
            raise Problem(400, "certificateLevel must be ADVANCED or QUALIFIED")
        rp = self.authenticate(body, level)
        session = self.new_session(body, rp, flow, level, target, script)
        with self.changed:
            self.forget_old()
            self.sessions[session.id] = session
        if flow == "notification":
            return jsonify({"sessionID": session.id})
        return jsonify({"sessionID": session.id, "sessionToken": session.token, "sessionSecret": session.secret,
                        "deviceLinkBase": session.device_link_base})

    def start_v2(self, target: tuple[str, str]) -> Response:
        """RP API v2: ``POST /v2/authentication/{etsi|document}/…`` (the fallback of older integrations)."""
        script = self.take_script()
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Problem(400, "a JSON object is required")
        level = body.get("certificateLevel", "QUALIFIED")
        if level not in ("ADVANCED", "QUALIFIED"):
            raise Problem(400, "certificateLevel must be ADVANCED or QUALIFIED")
        rp = self.authenticate(body, level)
        hash_name = V2_HASHES.get(str(body.get("hashType")))
        try:
            signed_hash = base64.b64decode(str(body.get("hash", "")), validate=True)
        except ValueError as exc:
            raise Problem(400, "hash must be Base64") from exc
        if hash_name is None or len(signed_hash) != HASHES[hash_name]().digest_size:
            raise Problem(400, "hashType must be SHA256, SHA384 or SHA512 and hash its digest")
        order = body.get("allowedInteractionsOrder")
        if not isinstance(order, list) or not order or not all(
                isinstance(i, dict) and i.get("type") in V2_TEXT_FIELDS
                and 0 < len(str(i.get(V2_TEXT_FIELDS[i["type"]][0], ""))) <= V2_TEXT_FIELDS[i["type"]][1]
                for i in order):
            raise Problem(400, "allowedInteractionsOrder: types with their displayText60/200")
        person = self.target_person(target, level, script)
        now = time.time()
        session = SimSession(id=str(uuid.uuid4()), rp=rp, flow="notification_v2", rp_challenge="", hash_name=hash_name,
                             interactions="", interaction_types=tuple(i["type"] for i in order), callback_url=None,
                             person=person, script=script, created=now, complete_at=now + self.settings.delay,
                             flow_type="", v2_hash=signed_hash)
        with self.changed:
            self.forget_old()
            self.sessions[session.id] = session
        return jsonify({"sessionID": session.id})

    def ok_answer_v2(self, session: SimSession, person: DemoPerson) -> dict[str, Any]:
        """A v2 success: the certificate and a PKCS#1 v1.5 signature over the RP's hash."""
        fault = session.script.fault
        level = "ADVANCED" if fault == "level_too_low" else person.level
        cert = self.pki.certificate(person, level=level, rogue=fault == "untrusted_certificate",
                                    expired=fault == "expired_certificate")
        algorithm = HASHES[session.hash_name]()
        value = self.pki.key(person).sign(session.v2_hash or b"", padding.PKCS1v15(), Prehashed(algorithm))
        if fault == "tampered_signature":
            value = value[:-1] + bytes([value[-1] ^ 0x01])
        return {"state": "COMPLETE", "result": {"endResult": "OK", "documentNumber": person.document_number},
                "signature": {"value": b64(value),
                              "algorithm": f"{session.hash_name.replace('-', '').lower()}WithRSAEncryption"},
                "cert": {"value": b64(cert.public_bytes(serialization.Encoding.DER)), "certificateLevel": level},
                "interactionFlowUsed": session.interaction_types[0]}

    def new_session(self, body: Mapping[str, Any], rp: RelyingParty, flow: str, level: str,
                    target: tuple[str, str] | None, script: Script) -> SimSession:
        """Validate the request and make its session."""
        if body.get("signatureProtocol") != "ACSP_V2":
            raise Problem(400, "signatureProtocol must be ACSP_V2")
        if "nonce" in body:
            raise Problem(400, "nonce is not allowed in authentication requests")
        challenge, hash_name = parse_challenge(body.get("signatureProtocolParameters"))
        types = parse_interactions(body.get("interactions"), flow)
        if flow == "notification" and body.get("vcType") != "numeric4":
            raise Problem(400, "vcType must be numeric4")
        callback = check_callback_url(body["initialCallbackUrl"]) if "initialCallbackUrl" in body else None
        if flow == "notification" and callback is not None:
            raise Problem(400, "initialCallbackUrl is for device-link flows")
        person = self.target_person(target, level, script)
        now = time.time()
        waits = person is None or script.await_device_link
        session = SimSession(id=str(uuid.uuid4()), rp=rp, flow=flow, rp_challenge=challenge, hash_name=hash_name,
                             interactions=str(body["interactions"]), interaction_types=types, callback_url=callback,
                             person=person, script=script, created=now,
                             complete_at=None if waits else now + self.settings.delay,
                             flow_type="Notification" if flow == "notification" else "QR")
        if flow == "device_link":
            session.token = secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
            session.secret = b64(secrets.token_bytes(32))
            session.device_link_base = self.settings.device_link_base
        return session

    def target_person(self, target: tuple[str, str] | None, level: str, script: Script) -> DemoPerson | None:
        """Who answers: the person named, or for anonymous sessions the scripted or configured one."""
        if target is None:
            document = script.document_number or self.settings.anonymous_document
            return self.persons.get(document)
        kind, value = target
        return self.person_by_identifier(value, level) if kind == "etsi" else self.person_by_document(value, level)

    def forget_old(self) -> None:
        """Drop sessions that can no longer be queried (call with the lock held)."""
        limit = time.time() - SESSION_LIFETIME - RESULT_KEPT - max(self.settings.delay, 0)
        for key in [key for key, s in self.sessions.items() if s.created < limit]:
            del self.sessions[key]

    # --- session status ------------------------------------------------------------------------------------------

    def status(self, session_id: str) -> Response:
        """The long-poll session status."""
        try:
            timeout_ms = int(request.args.get("timeoutMs", "60500"))
        except ValueError as exc:
            raise Problem(400, "timeoutMs must be an integer") from exc
        if not 1000 <= timeout_ms <= 120000:
            raise Problem(400, "timeoutMs must be between 1000 and 120000")
        deadline = time.time() + timeout_ms / 1000
        with self.changed:
            session = self.sessions.get(session_id)
            if session is None:
                raise Problem(404, "session does not exist or has expired")
            if session.script.status_http_status is not None:
                raise Problem(session.script.status_http_status, "as told by /test/next-session")
            while (answer := self.resolve(session)) is None and (left := deadline - time.time()) > 0:
                self.changed.wait(max(0.01, min(left, self.next_event(session) - time.time())))
            if session.completed is not None and time.time() - session.completed > RESULT_KEPT:
                raise Problem(404, "session does not exist or has expired")
        return jsonify(answer or {"state": "RUNNING"})

    @staticmethod
    def next_event(session: SimSession) -> float:
        """When the session will change by itself."""
        return session.complete_at if session.complete_at is not None else session.created + SESSION_LIFETIME

    def resolve(self, session: SimSession) -> dict[str, Any] | None:
        """The session's final answer once it is due (call with the lock held)."""
        now = time.time()
        if session.answer is None and session.complete_at is None and now >= session.created + SESSION_LIFETIME:
            session.answer, session.completed = {"state": "COMPLETE", "result": {"endResult": "TIMEOUT"}}, now
        elif session.answer is None and session.complete_at is not None and now >= session.complete_at:
            session.answer, session.completed = self.final_answer(session), now
        return session.answer

    def end_result(self, session: SimSession) -> str:
        """How the session ends."""
        return session.script.end_result or (session.person.end_result if session.person else "TIMEOUT")

    def final_answer(self, session: SimSession) -> dict[str, Any]:
        """The COMPLETE answer: the person's or scripted end result, or a signed OK."""
        end_result = self.end_result(session)
        if end_result == "OK" and session.person is not None:
            if session.flow == "notification_v2":
                return self.ok_answer_v2(session, session.person)
            return self.ok_answer(session, session.person)
        if session.flow == "notification_v2" and end_result == "USER_REFUSED_INTERACTION":
            refused = session.script.interaction or (session.person and session.person.refused_interaction)
            end_result = V2_REFUSED.get(str(refused), "USER_REFUSED")  # v2 names the screen in the end result
        result: dict[str, Any] = {"endResult": end_result}
        if end_result == "USER_REFUSED_INTERACTION":
            refused = session.script.interaction or (session.person and session.person.refused_interaction)
            result["details"] = {"interaction": refused or session.interaction_types[0]}
        return {"state": "COMPLETE", "result": result}

    def ok_answer(self, session: SimSession, person: DemoPerson) -> dict[str, Any]:
        """A successful authentication signed as the app does (spoilt as the script's ``fault`` says)."""
        fault = session.script.fault
        if fault == "wrong_person":
            person = next(p for p in DEMO_PERSONS if p.end_result == "OK" and p.identifier != person.identifier)
        level = "ADVANCED" if fault == "level_too_low" else person.level
        cert = self.pki.certificate(person, level=level, rogue=fault == "untrusted_certificate",
                                    expired=fault == "expired_certificate",
                                    smart_id=fault != "not_smartid_certificate")
        flow_type = "App2App" if fault == "wrong_flow_type" else session.flow_type
        server_random = b64(secrets.token_bytes(18))
        user_challenge = b64url(hashlib.sha256(session.verifier.encode()).digest())
        payload = signed_payload(scheme_name=self.settings.scheme_name, server_random=server_random,
                                 rp_challenge=session.rp_challenge, user_challenge=user_challenge,
                                 rp_name=session.rp.name, interactions=session.interactions,
                                 interaction_used=session.interaction_types[0], callback_url=session.callback_url,
                                 flow_type=flow_type)
        signature = self.sign(person, payload, session.hash_name, fault)
        return {
            "state": "COMPLETE",
            "result": {"endResult": "OK", "documentNumber": person.document_number},
            "signatureProtocol": "ACSP_V2",
            "signature": {"value": b64(signature["value"]), "serverRandom": server_random,
                          "userChallenge": user_challenge, "flowType": flow_type, **signature["algorithm"]},
            "cert": {"value": b64(cert.public_bytes(serialization.Encoding.DER)), "certificateLevel": level},
            "interactionTypeUsed": session.interaction_types[0],
        }

    def sign(self, person: DemoPerson, payload: bytes, hash_name: str, fault: str | None) -> dict[str, Any]:
        """The signature value and its algorithm fields: RSASSA-PSS, or PKCS#1 v1.5 for ``wrong_algorithm``."""
        algorithm, key = HASHES[hash_name](), self.pki.key(person)
        if fault == "wrong_algorithm":
            return {"value": key.sign(payload, padding.PKCS1v15(), algorithm),
                    "algorithm": {"signatureAlgorithm": "sha512WithRSAEncryption"}}
        value = key.sign(payload, padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size),
                         algorithm)
        if fault == "tampered_signature":
            value = value[:-1] + bytes([value[-1] ^ 0x01])
        parameters = {"hashAlgorithm": hash_name,
                      "maskGenAlgorithm": {"algorithm": "id-mgf1", "parameters": {"hashAlgorithm": hash_name}},
                      "saltLength": algorithm.digest_size, "trailerField": "0xbc"}
        return {"value": value, "algorithm": {"signatureAlgorithm": "rsassa-pss",
                                              "signatureAlgorithmParameters": parameters}}

    # --- the automated testing interface (the phone) -------------------------------------------------------------

    def submit_device_link(self) -> Response:
        """``POST /mock/device-link``: the phone opened a device link; check it and answer as its account."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("deviceLink"), str):
            raise Problem(400, "documentNumber, deviceLink and flowType are required")
        person = self.persons.get(str(body.get("documentNumber")))
        flow_type = body.get("flowType")
        if person is None or flow_type not in ("QR", "Web2App", "App2App"):
            raise Problem(400, "unknown documentNumber or flowType")
        unprotected, _, code = body["deviceLink"].partition("&authCode=")
        with self.changed:
            session = self.check_device_link(unprotected, code, str(flow_type))
            session.person, session.flow_type = person, str(flow_type)
            session.complete_at = time.time() + self.settings.delay
            self.changed.notify_all()
            ok = self.end_result(session) == "OK"
        if flow_type == "QR" or not ok:
            return jsonify({})
        separator = "&" if "?" in (session.callback_url or "") else "?"
        digest = b64url(hashlib.sha256(base64.b64decode(session.secret or "")).digest())
        return jsonify({"callbackUrl": f"{session.callback_url}{separator}sessionSecretDigest={digest}"
                                       f"&userChallengeVerifier={session.verifier}"})

    def check_device_link(self, unprotected: str, code: str, flow_type: str) -> SimSession:
        """The session a device link belongs to, if the link is well-formed, fresh and its authCode right."""
        parts = urlsplit(unprotected)
        query = {key: values[0] for key, values in parse_qs(parts.query, strict_parsing=True).items()
                 if len(values) == 1}
        session = next((s for s in self.sessions.values() if s.token and s.token == query.get("sessionToken")), None)
        if session is None or session.answer is not None:
            raise Problem(400, "no running device-link session with this sessionToken")
        base = f"{parts.scheme}://{parts.netloc}{parts.path}"
        if base != session.device_link_base or query.get("deviceLinkType") != flow_type:
            raise Problem(400, "deviceLinkBase or deviceLinkType does not match")
        if query.get("sessionType") != "auth" or query.get("version") != "1.0" or len(query.get("lang", "")) != 3:
            raise Problem(400, "sessionType, version or lang is wrong")
        if flow_type == "QR" and not self.fresh(query.get("elapsedSeconds", ""), session):
            raise Problem(400, "elapsedSeconds is missing or the QR code is stale")
        if flow_type != "QR" and not session.callback_url:
            raise Problem(400, "same-device flows need an initialCallbackUrl")
        expected = expected_auth_code(session, self.settings.scheme_name, unprotected, flow_type)
        if not hmac.compare_digest(code.encode(), expected.encode()):
            raise Problem(400, "authCode is wrong")
        return session

    @staticmethod
    def fresh(elapsed: str, session: SimSession) -> bool:
        """Whether a QR code's ``elapsedSeconds`` fits the time since the session was created."""
        return elapsed.isdigit() and int(elapsed) <= time.time() - session.created + 1

    # --- test control --------------------------------------------------------------------------------------------

    def set_next(self) -> Response:
        """``POST /test/next-session``: script the next session."""
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise Problem(400, "a JSON object is required")
        script = Script(http_status=optional_status(body.get("httpStatus")),
                        status_http_status=optional_status(body.get("statusHttpStatus")),
                        end_result=body.get("endResult"), interaction=body.get("interaction"),
                        fault=body.get("fault"), document_number=body.get("documentNumber"),
                        await_device_link=bool(body.get("awaitDeviceLink", False)))
        if script.end_result not in END_RESULTS | {None} or script.fault not in FAULTS | {None}:
            raise Problem(400, f"endResult must be one of {sorted(END_RESULTS)}, fault one of {sorted(FAULTS)}")
        if script.document_number is not None and script.document_number not in self.persons:
            raise Problem(400, "unknown documentNumber")
        with self.changed:
            self.next_script = script
        return Response(status=204)

    def clear_next(self) -> Response:
        """``DELETE /test/next-session``."""
        with self.changed:
            self.next_script = Script()
        return Response(status=204)

    def describe(self, session_id: str) -> Response:
        """``GET /test/sessions/<id>``: what the phone shows."""
        with self.changed:
            session = self.sessions.get(session_id)
            if session is None:
                raise Problem(404, "no such session")
            answer = self.resolve(session)
        return jsonify({
            "sessionID": session.id, "flow": session.flow, "state": answer["state"] if answer else "RUNNING",
            "verificationCode": shown_verification_code(session.rp_challenge) if session.flow == "notification"
            else shown_verification_code(b64(session.v2_hash)) if session.v2_hash is not None else None,
            "documentNumber": session.person.document_number if session.person else None,
            "flowType": session.flow_type, "interactionTypes": list(session.interaction_types),
        })


def optional_status(value: object) -> int | None:
    """A scripted HTTP status (400–599), or None."""
    if value is None:
        return None
    if not isinstance(value, int) or not 400 <= value <= 599:
        raise Problem(400, "HTTP statuses must be integers 400..599")
    return value


def create_app(settings: SimSettings | None = None) -> Flask:
    """Create the simulator (``settings`` default to the environment's)."""
    app = Flask(__name__)
    sim = Simulator(settings or SimSettings.from_env())
    app.extensions["smartid_simulator"] = sim
    pem = "application/x-pem-file"

    app.register_error_handler(Problem, Problem.response)
    app.add_url_rule("/v3/authentication/notification/etsi/<identifier>", "notification_etsi", methods=["POST"],
                     view_func=lambda identifier: sim.start("notification", ("etsi", identifier)))
    app.add_url_rule("/v3/authentication/notification/document/<document>", "notification_document",
                     methods=["POST"], view_func=lambda document: sim.start("notification", ("document", document)))
    app.add_url_rule("/v3/authentication/device-link/anonymous", "device_link_anonymous", methods=["POST"],
                     view_func=lambda: sim.start("device_link", None))
    app.add_url_rule("/v3/authentication/device-link/etsi/<identifier>", "device_link_etsi", methods=["POST"],
                     view_func=lambda identifier: sim.start("device_link", ("etsi", identifier)))
    app.add_url_rule("/v3/authentication/device-link/document/<document>", "device_link_document",
                     methods=["POST"], view_func=lambda document: sim.start("device_link", ("document", document)))
    app.add_url_rule("/v3/session/<session_id>", "session_status", view_func=sim.status)
    app.add_url_rule("/v2/authentication/etsi/<identifier>", "v2_etsi", methods=["POST"],
                     view_func=lambda identifier: sim.start_v2(("etsi", identifier)))
    app.add_url_rule("/v2/authentication/document/<document>", "v2_document", methods=["POST"],
                     view_func=lambda document: sim.start_v2(("document", document)))
    app.add_url_rule("/v2/session/<session_id>", "v2_session_status", view_func=sim.status)
    app.add_url_rule("/mock/device-link", "mock_device_link", methods=["POST"], view_func=sim.submit_device_link)
    app.add_url_rule("/test/ca.pem", "ca", view_func=lambda: Response(
        sim.pki.ca.public_bytes(serialization.Encoding.PEM), mimetype=pem))
    app.add_url_rule("/test/untrusted-ca.pem", "untrusted_ca", view_func=lambda: Response(
        sim.pki.rogue_ca.public_bytes(serialization.Encoding.PEM), mimetype=pem))
    app.add_url_rule("/test/next-session", "next_session", methods=["POST"], view_func=sim.set_next)
    app.add_url_rule("/test/next-session", "clear_next_session", methods=["DELETE"], view_func=sim.clear_next)
    app.add_url_rule("/test/sessions/<session_id>", "describe_session", view_func=sim.describe)
    return app

