"""Internet-bank login: Swedbank-style banklink **v009** (``VK_`` fields) and SEB-style **e-link** (``IB_`` fields).

Both protocols are browser round trips (docs/eid.md, "Internet banks"): ``BankLink.build_request`` gives the
hidden form fields the login page POSTs to the bank; the bank returns the person to us with an
auto-submitting form, whose fields go to ``BankLink.verify_response``. One class serves both protocols and
dispatches on ``BankConfig.protocol``::

    link = BankLink(config, nonces)                     # once per bank, at start-up
    request = link.build_request(return_url=..., lang="lv")
    session["bank_nonce"] = request.nonce               # render request.fields as a form to request.url
    ...
    identity = link.verify_response(request.form, expected_nonce=session.pop("bank_nonce"))

**Signatures.** Each message's signed data is, over a fixed list of fields in a fixed order, the value's
length in *characters* as three digits followed by the value (``signed_data``); values are trimmed. The
signature is RSA PKCS#1 v1.5 with SHA-512 (keys of at least 2048 bits), Base64-encoded in ``VK_MAC`` or
``IB_CRC``. v008 and SHA-1 are refused by design.

**Binding a response to the login attempt.**

* v009: our request carries a random ``VK_NONCE`` (40 hex characters); the bank signs it back in the 3013
  response. The response must carry the caller's expected nonce, be dated within ``max_clock_skew_seconds``
  of now, and its nonce must never have been used (``NonceStore``). ``VK_RID`` is sent empty (the nonce
  already binds the response) and ``VK_REC_ID`` is ``bank_sender_id``; ``VK_DATETIME`` is Riga time.
* e-link: the request is unsigned and carries no nonce or return address (SEB returns the person to the
  address registered in the merchant agreement; ``return_url`` is ignored), and the response echoes
  nothing of the request. ``BankRequest.nonce`` is therefore our own attempt id,
  ``"<unix time issued>.<random>"``: the response must be dated within the attempt's lifetime
  (``ELINK_ATTEMPT_SECONDS``, less the clock skew before it), each attempt completes at most once, and each
  signed response is accepted at most once. The protocol cannot tell two concurrent attempts apart.
  ``IB_DATE``/``IB_TIME`` are Riga local time without an offset (in the repeated autumn hour the earlier
  reading is taken).

**Cancelling.** Neither protocol has a documented "cancelled" service code; a bank returns a person who
cancels without an authentication response. Fields without ``VK_SERVICE`` / ``IB_SERVICE`` therefore
mean ``cancelled`` (the login route should accept that return by GET or POST).

Every failure raises ``LoginFailed`` with one of ``FAILURE_CODES`` and a message in Latvian and English;
the reason is logged without keys or personal data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import parse_qsl, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from klients_common.assurance import LOA_SUBSTANTIAL
from klients_common.personal_code import normalise_personal_code
from klients_common.riga import RIGA  # the banks' local time

from .base import LoginFailed, VerifiedIdentity

logger = logging.getLogger(__name__)

PROTOCOLS = ("v009", "elink")
MIN_KEY_BITS = 2048

V009_VERSION = "009"
V009_REQUEST_SERVICE = "4012"
V009_RESPONSE_SERVICE = "3013"
V009_REQUEST_MAC_FIELDS = ("VK_SERVICE", "VK_VERSION", "VK_SND_ID", "VK_REC_ID", "VK_NONCE", "VK_RETURN",
                           "VK_DATETIME", "VK_RID")
V009_RESPONSE_MAC_FIELDS = ("VK_SERVICE", "VK_VERSION", "VK_DATETIME", "VK_SND_ID", "VK_REC_ID", "VK_NONCE",
                            "VK_USER_NAME", "VK_USER_ID", "VK_COUNTRY", "VK_OTHER", "VK_TOKEN", "VK_RID")
V009_REQUIRED = ("VK_SERVICE", "VK_VERSION", "VK_DATETIME", "VK_SND_ID", "VK_REC_ID", "VK_NONCE",
                 "VK_USER_NAME", "VK_USER_ID", "VK_MAC", "VK_ENCODING")
V009_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")
V009_ENCODING = "UTF-8"

ELINK_VERSION = "001"
ELINK_REQUEST_SERVICE = "0005"
ELINK_RESPONSE_SERVICE = "0001"
ELINK_CRC_FIELDS = ("IB_SND_ID", "IB_SERVICE", "IB_REC_ID", "IB_USER", "IB_DATE", "IB_TIME", "IB_USER_INFO",
                    "IB_VERSION")
ELINK_REQUIRED = (*ELINK_CRC_FIELDS, "IB_CRC")
ELINK_DATE = re.compile(r"^\d{2}\.\d{2}\.\d{4}$")
ELINK_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}$")
ELINK_NONCE = re.compile(r"^(\d{1,12})\.[0-9a-f]{32}$")
ELINK_ATTEMPT_SECONDS = 900  # how long after build_request an e-link response is still accepted

LANGUAGES = {"lv": "LAT", "en": "ENG", "ru": "RUS"}  # our language → VK_LANG / IB_LANG; anything else → LAT
NONCE_MARGIN_SECONDS = 60  # a used nonce is remembered this much longer than its response could be fresh

# code → (Latvian, English, whether trying the same bank again makes sense)
FAILURES: dict[str, tuple[str, str, bool]] = {
    "cancelled": ("Pieteikšanās internetbankā tika atcelta.", "The internet-bank login was cancelled.", True),
    "bad_mac": ("Bankas atbildes elektroniskais paraksts nav derīgs. Lūdzu, piesakieties vēlreiz.",
                "The bank's response carries an invalid signature. Please log in again.", True),
    "stale_response": ("Bankas atbilde ir novecojusi vai tās laiks nesakrīt ar pašreizējo laiku. "
                       "Lūdzu, piesakieties vēlreiz.",
                       "The bank's response is out of date, or its time does not match the current time. "
                       "Please log in again.", True),
    "replayed": ("Šī bankas atbilde jau ir izmantota. Lūdzu, piesakieties vēlreiz.",
                 "This bank response has already been used. Please log in again.", True),
    "wrong_nonce": ("Bankas atbilde neattiecas uz šo pieteikšanās mēģinājumu. Lūdzu, piesakieties vēlreiz.",
                    "The bank's response does not belong to this login attempt. Please log in again.", True),
    "wrong_sender": ("Atbilde nav no izvēlētās bankas. Lūdzu, izvēlieties citu pieteikšanās veidu.",
                     "The response did not come from the chosen bank. Please choose another login method.",
                     False),
    "wrong_receiver": ("Bankas atbilde bija adresēta citam pakalpojumam. Lūdzu, izvēlieties citu pieteikšanās "
                       "veidu.",
                       "The bank's response was addressed to another service. Please choose another login "
                       "method.", False),
    "wrong_service": ("Banka atbildēja ar neparedzētu pakalpojumu vai protokola versiju. Lūdzu, izvēlieties "
                      "citu pieteikšanās veidu.",
                      "The bank answered with an unexpected service or protocol version. Please choose another "
                      "login method.", False),
    "malformed": ("Bankas atbilde ir nepilnīga vai bojāta. Lūdzu, piesakieties vēlreiz.",
                  "The bank's response is incomplete or damaged. Please log in again.", True),
    "bad_personal_code": ("Banka nenosūtīja derīgu Latvijas personas kodu, tāpēc ar šo banku pieteikties nevar. "
                          "Lūdzu, izvēlieties citu pieteikšanās veidu.",
                          "The bank did not send a valid Latvian personal code, so you cannot log in with this "
                          "bank. Please choose another login method.", False),
}
FAILURE_CODES = tuple(FAILURES)
RESPONSE_FIELD = re.compile(r"^(VK|IB)_[A-Z0-9_]{1,24}$")
MAX_RESPONSE_FIELDS = 40


def response_fields(values: Mapping[str, str]) -> dict[str, str]:
    """Return what of a bank's return is worth keeping until it is verified: the protocol's fields (``VK_*``,
    ``IB_*``), each no longer than a signed value can be (999 characters), at most 40. Anything else an
    anonymous sender adds is dropped, so a parked return stays small."""
    kept: dict[str, str] = {}
    for name, value in values.items():
        if RESPONSE_FIELD.match(name) and isinstance(value, str) and len(value) <= 999:
            kept[name] = value
            if len(kept) == MAX_RESPONSE_FIELDS:
                break
    return kept


@dataclass(frozen=True)
class BankConfig:
    """One bank's connection: where the browser goes, who we are, and the keys on both sides."""

    bank_id: str  # "swedbank" | "seb" (our key; also in amr "bank:<bank_id>")
    display_name: str  # shown on the bank-choice page, e.g. "Swedbank"
    protocol: str  # "v009" | "elink"
    url: str  # where the browser POSTs the request form
    merchant_id: str  # our VK_SND_ID / IB_SND_ID (and the VK_REC_ID / IB_REC_ID of responses)
    bank_sender_id: str  # the bank's id in responses (and our v009 VK_REC_ID), e.g. "SWEDBANK_LV" / "SEBUB"
    our_private_key_pem: bytes | None  # signs our v009 requests (e-link requests are unsigned)
    bank_certificate_pem: bytes  # verifies the bank's responses (an X.509 certificate or a public key, PEM)
    max_clock_skew_seconds: int = 300

    def __repr__(self) -> str:  # never show the private key
        return (f"BankConfig(bank_id={self.bank_id!r}, protocol={self.protocol!r}, url={self.url!r}, "
                f"merchant_id={self.merchant_id!r}, bank_sender_id={self.bank_sender_id!r})")


@dataclass(frozen=True)
class BankRequest:
    """What the login page sends the browser to the bank with."""

    url: str
    fields: dict[str, str]  # the hidden form fields to POST from the browser, in order
    nonce: str  # keep it in the person's session; pass it back as ``expected_nonce``


class NonceStore(Protocol):
    """Remembers used nonces so that a response is accepted only once."""

    def use(self, bank_id: str, nonce: str, expires_at: float) -> bool:
        """Record ``nonce`` (kept at least until ``expires_at``, Unix time); True the first time, False after."""
        ...


class MemoryNonceStore:
    """An in-process ``NonceStore`` for tests and development (one process only)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def use(self, bank_id: str, nonce: str, expires_at: float) -> bool:
        """Record ``nonce`` for ``bank_id``; True the first time, False while it is remembered."""
        with self._lock:
            now = self._clock()
            for key in [key for key, until in self._seen.items() if until < now]:
                del self._seen[key]
            if (bank_id, nonce) in self._seen:
                return False
            self._seen[(bank_id, nonce)] = expires_at
            return True


def signed_data(values: Iterable[str]) -> str:
    """Return the text a MAC/CRC signs: each value trimmed, prefixed by its length in characters (``%03d``)."""
    parts = []
    for value in values:
        text = value.strip()
        if len(text) > 999:
            raise ValueError("a signed field is longer than 999 characters")
        parts.append(f"{len(text):03d}{text}")
    return "".join(parts)


def split_full_name(full_name: str) -> tuple[str, str]:
    """Split a bank's full name into (given, family).

    ``"FAMILY,GIVEN"`` (the iPizza comma form) splits at the comma; otherwise the last word is the family
    name and the words before it the given names (``"Jānis Pēteris Bērziņš"`` → ``("Jānis Pēteris",
    "Bērziņš")``). A single word is taken as the family name. Letter case is kept as the bank sent it.
    """
    text = " ".join(full_name.split())
    if "," in text:
        family, _, given = text.partition(",")
        return given.strip(), family.strip()
    given, _, family = text.rpartition(" ")
    return given, family


def _fail(code: str, reason: str, bank_id: str) -> LoginFailed:
    """Log why a response was refused (no keys, no personal data) and return the error to raise."""
    logger.warning("bank login refused: bank=%s code=%s reason=%s", bank_id, code, reason)
    message_lv, message_en, retry = FAILURES[code]
    return LoginFailed(code, message_lv, message_en, retry=retry)


def _load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """Load our RSA signing key, refusing weak or non-RSA keys."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < MIN_KEY_BITS:
        raise ValueError(f"our banklink key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def _load_bank_key(pem: bytes) -> rsa.RSAPublicKey:
    """Load the bank's RSA public key from its certificate (or a bare public key)."""
    key: object
    try:
        key = x509.load_pem_x509_certificate(pem).public_key()
    except ValueError:
        key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_KEY_BITS:
        raise ValueError(f"the bank's key must be RSA of at least {MIN_KEY_BITS} bits")
    return key


def _aware(now: datetime | None) -> datetime:
    """Return ``now`` (timezone-aware) or the current time."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _same(a: str, b: str) -> bool:
    """Compare two non-empty strings in constant time."""
    return bool(a) and hmac.compare_digest(a.encode(), b.encode())


class BankLink:
    """A login connector for one bank; ``config.protocol`` selects v009 or e-link. Thread-safe."""

    def __init__(self, config: BankConfig, nonces: NonceStore) -> None:
        if config.protocol not in PROTOCOLS:
            raise ValueError(f"unknown bank protocol {config.protocol!r}; expected one of {PROTOCOLS}")
        if config.max_clock_skew_seconds <= 0:
            raise ValueError("max_clock_skew_seconds must be positive")
        if config.protocol == "v009" and config.our_private_key_pem is None:
            raise ValueError("a v009 bank needs our_private_key_pem to sign requests")
        self.config = config
        self._nonces = nonces
        self._bank_key = _load_bank_key(config.bank_certificate_pem)
        self._our_key = _load_private_key(config.our_private_key_pem) if config.our_private_key_pem else None

    def __repr__(self) -> str:
        return f"BankLink({self.config!r})"

    # -- requests -----------------------------------------------------------------------------------------

    def build_request(self, *, return_url: str, lang: str = "lv", now: datetime | None = None) -> BankRequest:
        """Return the form that sends the browser to the bank. ``return_url`` is ignored by e-link."""
        now = _aware(now)
        bank_lang = LANGUAGES.get(lang.lower(), "LAT")
        if self.config.protocol == "v009":
            return self._build_v009(return_url, bank_lang, now)
        return self._build_elink(bank_lang, now)

    def _build_v009(self, return_url: str, bank_lang: str, now: datetime) -> BankRequest:
        """Build a signed 4012 request."""
        query = parse_qsl(urlsplit(return_url).query, keep_blank_values=True)
        if not return_url or len(return_url) > 255 or any(key.upper().startswith("VK_") for key, _ in query):
            raise ValueError("VK_RETURN must be a URL of at most 255 characters without VK_ parameters")
        nonce = secrets.token_hex(20)
        fields = {
            "VK_SERVICE": V009_REQUEST_SERVICE,
            "VK_VERSION": V009_VERSION,
            "VK_SND_ID": self.config.merchant_id,
            "VK_REC_ID": self.config.bank_sender_id,
            "VK_NONCE": nonce,
            "VK_RETURN": return_url,
            "VK_DATETIME": now.astimezone(RIGA).strftime("%Y-%m-%dT%H:%M:%S%z"),
            "VK_RID": "",
        }
        fields["VK_MAC"] = self._sign(signed_data(fields[name] for name in V009_REQUEST_MAC_FIELDS))
        fields["VK_ENCODING"] = V009_ENCODING
        fields["VK_LANG"] = bank_lang
        return BankRequest(url=self.config.url, fields=fields, nonce=nonce)

    def _build_elink(self, bank_lang: str, now: datetime) -> BankRequest:
        """Build an (unsigned) 0005 request; the nonce is our attempt id."""
        nonce = f"{int(now.timestamp())}.{secrets.token_hex(16)}"
        fields = {"IB_SND_ID": self.config.merchant_id, "IB_SERVICE": ELINK_REQUEST_SERVICE, "IB_LANG": bank_lang}
        return BankRequest(url=self.config.url, fields=fields, nonce=nonce)

    def _sign(self, data: str) -> str:
        """Return the Base64 RSA SHA-512 signature of ``data`` with our key."""
        if self._our_key is None:  # pragma: no cover - __init__ requires the key for v009
            raise RuntimeError("no signing key configured")
        return base64.b64encode(self._our_key.sign(data.encode(), padding.PKCS1v15(), hashes.SHA512())).decode()

    # -- responses ----------------------------------------------------------------------------------------

    def verify_response(self, fields: Mapping[str, str], *, expected_nonce: str,
                        now: datetime | None = None) -> VerifiedIdentity:
        """Verify the bank's response and return who logged in, or raise ``LoginFailed``.

        ``expected_nonce`` is ``BankRequest.nonce`` from the person's session ("" when the session has none,
        which fails as ``wrong_nonce``).
        """
        now = _aware(now)
        expected_nonce = expected_nonce if isinstance(expected_nonce, str) else ""
        if self.config.protocol == "v009":
            return self._verify_v009(fields, expected_nonce, now)
        return self._verify_elink(fields, expected_nonce, now)

    def _verify_v009(self, fields: Mapping[str, str], expected_nonce: str, now: datetime) -> VerifiedIdentity:
        """Check a 3013 response step by step (see the module docstring)."""
        if not self._value(fields, "VK_SERVICE"):
            raise self._fail("cancelled", "returned without an authentication response")
        v = self._collect(fields, (*V009_RESPONSE_MAC_FIELDS, "VK_MAC", "VK_ENCODING"), V009_REQUIRED)
        if v["VK_SERVICE"] != V009_RESPONSE_SERVICE or v["VK_VERSION"] != V009_VERSION:
            raise self._fail("wrong_service", f"service {v['VK_SERVICE']!r} version {v['VK_VERSION']!r}")
        self._check_parties(v["VK_SND_ID"], v["VK_REC_ID"])
        if v["VK_ENCODING"].upper() != V009_ENCODING:
            raise self._fail("malformed", f"VK_ENCODING {v['VK_ENCODING']!r}")
        self._check_signature(signed_data(v[name] for name in V009_RESPONSE_MAC_FIELDS), v["VK_MAC"])
        stamp = self._parse_v009_datetime(v["VK_DATETIME"])
        self._check_fresh(stamp, now)
        if not _same(v["VK_NONCE"], expected_nonce):
            raise self._fail("wrong_nonce", "VK_NONCE differs from the session's")
        if v["VK_COUNTRY"] not in ("", "LV"):
            raise self._fail("bad_personal_code", f"VK_COUNTRY {v['VK_COUNTRY']!r}")
        identity = self._identity(v["VK_USER_ID"], v["VK_USER_NAME"], protocol="v009",
                                  token=v["VK_TOKEN"] or None, country=v["VK_COUNTRY"] or "LV")
        self._use_once(v["VK_NONCE"], self._remember_until(stamp, now), "VK_NONCE already used")
        return identity

    def _verify_elink(self, fields: Mapping[str, str], expected_nonce: str, now: datetime) -> VerifiedIdentity:
        """Check a 0001 response step by step (see the module docstring)."""
        if not self._value(fields, "IB_SERVICE"):
            raise self._fail("cancelled", "returned without an authentication response")
        v = self._collect(fields, ELINK_REQUIRED, ELINK_REQUIRED)
        if v["IB_SERVICE"] != ELINK_RESPONSE_SERVICE or v["IB_VERSION"] != ELINK_VERSION:
            raise self._fail("wrong_service", f"service {v['IB_SERVICE']!r} version {v['IB_VERSION']!r}")
        self._check_parties(v["IB_SND_ID"], v["IB_REC_ID"])
        self._check_signature(signed_data(v[name] for name in ELINK_CRC_FIELDS), v["IB_CRC"])
        stamp = self._parse_elink_datetime(v["IB_DATE"], v["IB_TIME"])
        self._check_fresh(stamp, now)
        self._check_elink_attempt(expected_nonce, stamp)
        code, name = self._parse_user_info(v["IB_USER_INFO"], v["IB_USER"])
        identity = self._identity(code, name, protocol="elink", token=None, country="LV")
        until = self._remember_until(stamp, now)
        digest = hashlib.sha256(v["IB_CRC"].encode()).hexdigest()
        self._use_once(f"crc:{digest}", until, "this IB_CRC was already accepted")
        attempt_ends = self._elink_issued(expected_nonce) + ELINK_ATTEMPT_SECONDS + self.config.max_clock_skew_seconds
        self._use_once(expected_nonce, max(until, attempt_ends), "this login attempt was already completed")
        return identity

    # -- steps --------------------------------------------------------------------------------------------

    def _fail(self, code: str, reason: str) -> LoginFailed:
        return _fail(code, reason, self.config.bank_id)

    @staticmethod
    def _value(fields: Mapping[str, str], name: str) -> str:
        """Return a field trimmed, "" when absent."""
        value = fields.get(name)
        return value.strip() if isinstance(value, str) else ""

    def _collect(self, fields: Mapping[str, str], names: Iterable[str], required: Iterable[str]) -> dict[str, str]:
        """Return the named fields trimmed (absent → ""); refuse when a required one is missing or empty."""
        if any(name in fields and not isinstance(fields[name], str) for name in names):
            raise self._fail("malformed", "a field is not text")
        values = {name: self._value(fields, name) for name in names}
        missing = [name for name in required if not values[name]]
        if missing:
            raise self._fail("malformed", f"missing {', '.join(missing)}")
        return values

    def _check_parties(self, sender: str, receiver: str) -> None:
        """The response must come from the configured bank and be addressed to us."""
        if sender != self.config.bank_sender_id:
            raise self._fail("wrong_sender", f"sender {sender!r}")
        if receiver != self.config.merchant_id:
            raise self._fail("wrong_receiver", f"receiver {receiver!r}")

    def _check_signature(self, data: str, mac: str) -> None:
        """Verify the Base64 RSA PKCS#1 v1.5 SHA-512 signature of ``data`` with the bank's key."""
        try:
            signature = base64.b64decode("".join(mac.split()), validate=True)
            self._bank_key.verify(signature, data.encode(), padding.PKCS1v15(), hashes.SHA512())
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise self._fail("bad_mac", "signature does not verify with the bank's key") from exc

    def _parse_v009_datetime(self, value: str) -> datetime:
        """Parse ``YYYY-MM-DDTHH:MM:SS+ZZZZ``."""
        try:
            if not V009_DATETIME.match(value):
                raise ValueError(value)
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
        except ValueError as exc:
            raise self._fail("malformed", f"VK_DATETIME {value!r}") from exc

    def _parse_elink_datetime(self, day: str, clock: str) -> datetime:
        """Parse ``IB_DATE`` (``dd.mm.yyyy``) and ``IB_TIME`` (``HH:MM:SS``), Latvian local time."""
        try:
            if not (ELINK_DATE.match(day) and ELINK_TIME.match(clock)):
                raise ValueError(day, clock)
            return datetime.strptime(f"{day} {clock}", "%d.%m.%Y %H:%M:%S").replace(tzinfo=RIGA)
        except ValueError as exc:
            raise self._fail("malformed", f"IB_DATE/IB_TIME {day!r} {clock!r}") from exc

    def _check_fresh(self, stamp: datetime, now: datetime) -> None:
        """Refuse a response dated more than the allowed skew before or after now."""
        offset = (now - stamp).total_seconds()
        if abs(offset) > self.config.max_clock_skew_seconds:
            raise self._fail("stale_response", f"response dated {offset:+.0f} s from now")

    def _elink_issued(self, nonce: str) -> float:
        """Return when an e-link attempt id was issued (Unix time), or refuse a foreign one."""
        match = ELINK_NONCE.match(nonce)
        if not match:
            raise self._fail("wrong_nonce", "the expected nonce is not an e-link attempt id")
        return float(match.group(1))

    def _check_elink_attempt(self, nonce: str, stamp: datetime) -> None:
        """The response must be dated within the attempt's lifetime."""
        offset = stamp.timestamp() - self._elink_issued(nonce)
        if not -self.config.max_clock_skew_seconds <= offset <= ELINK_ATTEMPT_SECONDS:
            raise self._fail("wrong_nonce", f"response dated {offset:+.0f} s from the attempt's start")

    def _parse_user_info(self, info: str, user: str) -> tuple[str, str]:
        """Return (personal code, name) from ``ID=...;NAME=...`` (``USER=`` also names), checked against IB_USER."""
        parts: dict[str, str] = {}
        for part in info.split(";"):
            key, _, value = part.partition("=")
            parts[key.strip().upper()] = value.strip()
        code = parts.get("ID") or user
        name = (parts.get("NAME") or parts.get("USER") or "").strip()
        if not name or not _same(code, user):
            raise self._fail("malformed", "IB_USER_INFO lacks a name or disagrees with IB_USER")
        return code, name

    def _identity(self, raw_code: str, full_name: str, *, protocol: str, token: str | None,
                  country: str) -> VerifiedIdentity:
        """Build the verified identity, refusing codes that are not valid Latvian personal codes."""
        try:
            code = normalise_personal_code(raw_code)
        except ValueError as exc:
            raise self._fail("bad_personal_code", str(exc)) from exc
        given, family = split_full_name(full_name)
        if not family:
            raise self._fail("malformed", "empty name")
        return VerifiedIdentity(
            personal_code=code, given_name=given, family_name=family, method="bank", acr=LOA_SUBSTANTIAL,
            amr=(f"bank:{self.config.bank_id}",),
            detail={"bank": self.config.bank_id, "token": token, "protocol": protocol, "country": country},
        )

    def _remember_until(self, stamp: datetime, now: datetime) -> float:
        """Return how long a nonce must be remembered: as long as its response could still look fresh."""
        return max(stamp.timestamp(), now.timestamp()) + self.config.max_clock_skew_seconds + NONCE_MARGIN_SECONDS

    def _use_once(self, nonce: str, expires_at: float, reason: str) -> None:
        """Record ``nonce`` as used, refusing a replay."""
        if not self._nonces.use(self.config.bank_id, nonce, expires_at):
            raise self._fail("replayed", reason)
