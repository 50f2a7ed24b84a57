"""Internet-bank login simulator: a Swedbank-style banklink **v009** bank and an SEB-style **e-link** bank.

It speaks the protocols of docs/eid.md, "Internet banks", on the wire, independently of the connector
(``klients_identity.connectors.banklink``), so the connector is tested against the protocol rather than
against itself.

**Paths** (mirroring the real banks')

* ``POST /swedbank/banklink`` – a v009 4012 request (``VK_`` form fields, ``VK_MAC`` over the documented
  fields with the merchant's key, SHA-512). ``POST /seb/ipc/epakindex.jsp`` – an e-link 0005 request
  (``IB_SND_ID``, ``IB_SERVICE``, ``IB_LANG``; unsigned). An invalid request gets a 400 page naming the
  field, as a bank's error page would.
* A valid request gets the bank's login page: the simulated customer picks a demo person and presses
  **Apstiprināt / Confirm** or **Atcelt / Cancel**, which POSTs ``person`` and ``action`` to
  ``/<bank>/login/<session>``. The answer is an auto-submitting HTML form that POSTs the signed response
  (3013 ``VK_`` fields with ``VK_MAC``, or 0001 ``IB_`` fields with ``IB_CRC``) to the return address – v009's
  ``VK_RETURN``, e-link's registered address. A cancel returns the person with an empty form: no
  authentication response, as the banks document none for a cancel.

**Configuration**

* ``SIM_BANK_MERCHANTS`` – JSON ``{"<merchant id>": {"public_key_pem": "...", "return_urls": ["..."],
  "elink_return_url": "..."}}``; ``create_app(merchants=...)`` takes the same mapping (tests).
  ``public_key_pem`` (an RSA public key or certificate, PEM) verifies the merchant's v009 requests;
  ``VK_RETURN`` must be one of ``return_urls`` or below one (a sub-path or a query); e-link returns to
  ``elink_return_url`` (default: the first of ``return_urls``).
* ``SIM_BANK_KEYS_DIR`` – optional folder keeping each bank's RSA key (``<bank>.key.pem``) across restarts;
  without it, fresh 2048-bit keys are made at start-up. Each bank's self-signed certificate is served at
  ``GET /test/<bank>/certificate.pem`` (``bank`` is ``swedbank`` or ``seb``) for dev and tests to configure.

**Test controls** (simulator only)

* ``POST /test/<bank>/next-response`` with ``{"mode": "bad_mac" | "stale" | "future" | "wrong_sender",
  "seconds": 600}``: the next confirmed response is, respectively, altered after signing (another person's
  code), dated ``seconds`` in the past or the future, or signed by a sender other than the bank. One-shot.
* ``POST /test/<bank>/replay``: the auto-submitting form of the bank's last response again, unchanged.
* ``GET /test/<bank>/last-response``: that response's fields as JSON.

State is in memory (run one process): it is a simulator.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from flask import Flask, Response, abort, jsonify, render_template_string, request

RIGA = ZoneInfo("Europe/Riga")
CLOCK_SKEW = timedelta(minutes=5)
MODES = ("bad_mac", "stale", "future", "wrong_sender")

V009_REQUEST_MAC = ("VK_SERVICE", "VK_VERSION", "VK_SND_ID", "VK_REC_ID", "VK_NONCE", "VK_RETURN", "VK_DATETIME",
                    "VK_RID")
V009_RESPONSE_MAC = ("VK_SERVICE", "VK_VERSION", "VK_DATETIME", "VK_SND_ID", "VK_REC_ID", "VK_NONCE",
                     "VK_USER_NAME", "VK_USER_ID", "VK_COUNTRY", "VK_OTHER", "VK_TOKEN", "VK_RID")
ELINK_RESPONSE_CRC = ("IB_SND_ID", "IB_SERVICE", "IB_REC_ID", "IB_USER", "IB_DATE", "IB_TIME", "IB_USER_INFO",
                      "IB_VERSION")
LANGUAGES = ("LAT", "ENG", "RUS")


@dataclass(frozen=True)
class BankProfile:
    """A simulated bank: its protocol, its id in responses, and where requests arrive."""

    bank_id: str
    name: str
    protocol: str  # "v009" | "elink"
    sender_id: str
    path: str


@dataclass(frozen=True)
class DemoPerson:
    """A customer the simulated bank can log in."""

    personal_code: str
    name: str  # given names then family name, as Swedbank LV sends it (SEB sends it in capitals)
    note: str = ""


BANKS = {
    "swedbank": BankProfile("swedbank", "Swedbank", "v009", "SWEDBANK_LV", "/swedbank/banklink"),
    "seb": BankProfile("seb", "SEB", "elink", "SEBUB", "/seb/ipc/epakindex.jsp"),
}

PERSONS = (
    DemoPerson("374042-80367", "Anna Kalniņa", "Swedbank's anonymised example code (new format)"),
    DemoPerson("161175-19997", "Jānis Pēteris Bērziņš", "python-stdnum's example code"),
    DemoPerson("010180-15097", "Andris Paraudziš", "eParaksts documentation's example code"),
    DemoPerson("040404-10003", "Ērika Šķēle-Ūdre", "Smart-ID DEMO code"),
    DemoPerson("320000-00008", "Ģirts Čakste", "new-format Smart-ID test code"),
    DemoPerson("010111-22341", "Kļūdainais Kods", "fails the check digit: the connector must refuse it"),
)
PERSON_BY_CODE = {person.personal_code: person for person in PERSONS}

LOGIN_PAGE = """<!doctype html><html lang="lv"><head><meta charset="utf-8">
<title>{{ bank.name }} – pieteikšanās / login (simulators)</title></head>
<body><main><h1>{{ bank.name }} (simulators / simulator)</h1>
<p>Pakalpojums <strong>{{ merchant }}</strong> lūdz apstiprināt jūsu identitāti. /
The service <strong>{{ merchant }}</strong> asks you to confirm your identity.</p>
<form method="post" action="{{ action }}">
<fieldset><legend>Demonstrācijas klients / Demo customer</legend>
{% for p in persons %}<label><input type="radio" name="person" value="{{ p.personal_code }}"
{% if loop.first %} checked{% endif %}> {{ p.name }} ({{ p.personal_code }})</label><br>
{% endfor %}</fieldset>
<button name="action" value="confirm">Apstiprināt / Confirm</button>
<button name="action" value="cancel">Atcelt / Cancel</button>
</form></main></body></html>"""

RETURN_PAGE = """<!doctype html><html lang="lv"><head><meta charset="utf-8">
<title>{{ bank.name }} – atgriešanās / returning</title></head>
<body onload="document.forms[0].submit()"><form method="post" action="{{ url }}" accept-charset="UTF-8">
{% for name, value in fields %}<input type="hidden" name="{{ name }}" value="{{ value }}">
{% endfor %}<noscript><button>Atgriezties pie pakalpojuma / Return to the service</button></noscript>
</form></body></html>"""

ERROR_PAGE = """<!doctype html><html lang="lv"><head><meta charset="utf-8">
<title>{{ bank.name }} – kļūda / error</title></head>
<body><main><h1>{{ bank.name }}: pieprasījums noraidīts / request refused</h1>
<p class="error">{{ error }}</p></main></body></html>"""


@dataclass
class Merchant:
    """A service registered with the simulated banks."""

    merchant_id: str
    public_key: rsa.RSAPublicKey | None
    return_urls: tuple[str, ...]
    elink_return_url: str | None


@dataclass
class Pending:
    """A login waiting for the customer's decision."""

    merchant_id: str
    return_url: str
    lang: str
    nonce: str = ""
    rid: str = ""


@dataclass
class BankState:
    """A simulated bank's key, certificate and in-memory state."""

    profile: BankProfile
    key: rsa.RSAPrivateKey
    certificate_pem: bytes
    pending: dict[str, Pending] = field(default_factory=dict)
    last: tuple[str, list[tuple[str, str]]] | None = None
    next_mode: tuple[str, int] | None = None


class RequestRefused(Exception):
    """A request the bank refuses; the message names the field and the problem."""


def mac_source(values: list[str]) -> str:
    """Return the iPizza MAC source: each trimmed value prefixed by its length in characters, ``%03d``."""
    return "".join(f"{len(value.strip()):03d}{value.strip()}" for value in values)


def rsa_sign(key: rsa.RSAPrivateKey, source: str) -> str:
    """Sign ``source`` (UTF-8) with RSA PKCS#1 v1.5 SHA-512; return Base64."""
    return base64.b64encode(key.sign(source.encode(), padding.PKCS1v15(), hashes.SHA512())).decode()


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    """Load a merchant's RSA public key from a PEM public key or certificate."""
    data = pem.encode()
    key: object
    try:
        key = x509.load_pem_x509_certificate(data).public_key()
    except ValueError:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("a merchant key must be RSA")
    return key


def load_merchants(config: dict[str, Any]) -> dict[str, Merchant]:
    """Build the merchant registry from ``SIM_BANK_MERCHANTS``-shaped configuration."""
    merchants = {}
    for merchant_id, entry in config.items():
        pem = entry.get("public_key_pem")
        merchants[merchant_id] = Merchant(
            merchant_id=merchant_id, public_key=load_public_key(pem) if pem else None,
            return_urls=tuple(entry.get("return_urls", ())), elink_return_url=entry.get("elink_return_url"))
    return merchants


def bank_key(bank_id: str, keys_dir: str | None) -> rsa.RSAPrivateKey:
    """Return the bank's RSA key: kept in ``keys_dir`` when given, otherwise new."""
    path = Path(keys_dir, f"{bank_id}.key.pem") if keys_dir else None
    if path is not None and path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)
    return key


def self_signed_certificate(profile: BankProfile, key: rsa.RSAPrivateKey) -> bytes:
    """Return a deterministic self-signed certificate for the bank's key (same key → same certificate)."""
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "LV"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"{profile.name} (simulator)"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"{profile.sender_id} banklink (simulator)")])
    public_numbers = key.public_key().public_numbers()
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(public_numbers.n % (1 << 63) + 1)
                   .not_valid_before(datetime(2025, 1, 1, tzinfo=UTC))
                   .not_valid_after(datetime(2035, 1, 1, tzinfo=UTC))
                   .sign(key, hashes.SHA512()))
    return certificate.public_bytes(serialization.Encoding.PEM)


def check_v009_request(form: dict[str, str], profile: BankProfile, merchants: dict[str, Merchant]) -> Pending:
    """Validate a 4012 request as the bank does; return the pending login or raise ``RequestRefused``."""
    expected = {"VK_SERVICE": "4012", "VK_VERSION": "009", "VK_REC_ID": profile.sender_id}
    for name, value in expected.items():
        if form.get(name) != value:
            raise RequestRefused(f"{name} must be {value!r}, not {form.get(name)!r}")
    merchant = merchants.get(form.get("VK_SND_ID", ""))
    if merchant is None or merchant.public_key is None:
        raise RequestRefused(f"VK_SND_ID {form.get('VK_SND_ID')!r}: no such merchant with a registered key")
    if not 0 < len(form.get("VK_NONCE", "")) <= 50:
        raise RequestRefused("VK_NONCE must have 1 to 50 characters")
    return_url = form.get("VK_RETURN", "")
    if not any(return_url_allowed(return_url, allowed) for allowed in merchant.return_urls):
        raise RequestRefused(f"VK_RETURN {return_url!r} is not registered for {merchant.merchant_id}")
    check_v009_datetime(form.get("VK_DATETIME", ""))
    if form.get("VK_ENCODING", "UTF-8").upper() != "UTF-8":
        raise RequestRefused("VK_ENCODING must be UTF-8")
    try:
        signature = base64.b64decode(form.get("VK_MAC", ""), validate=True)
        merchant.public_key.verify(signature, mac_source([form.get(name, "") for name in V009_REQUEST_MAC]).encode(),
                                   padding.PKCS1v15(), hashes.SHA512())
    except (ValueError, InvalidSignature) as exc:
        raise RequestRefused("VK_MAC does not verify with the merchant's key (RSA SHA-512)") from exc
    lang = form.get("VK_LANG", "LAT").upper()
    return Pending(merchant_id=merchant.merchant_id, return_url=return_url,
                   lang=lang if lang in LANGUAGES else "LAT", nonce=form["VK_NONCE"], rid=form.get("VK_RID", ""))


def return_url_allowed(url: str, allowed: str) -> bool:
    """Whether ``url`` is the registered address ``allowed`` or below it (a path under it, or a query)."""
    if not allowed or not url.startswith(allowed):
        return False
    rest = url[len(allowed):]
    return not rest or allowed.endswith("/") or rest[0] in "/?"


def check_v009_datetime(value: str) -> None:
    """``VK_DATETIME`` must be ``YYYY-MM-DDTHH:MM:SS+ZZZZ`` and within five minutes of now."""
    try:
        stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError as exc:
        raise RequestRefused(f"VK_DATETIME {value!r} must look like 2026-01-31T12:00:00+0200") from exc
    if abs(datetime.now(UTC) - stamp) > CLOCK_SKEW:
        raise RequestRefused(f"VK_DATETIME {value!r} is more than 5 minutes from the bank's time")


def check_elink_request(form: dict[str, str], merchants: dict[str, Merchant]) -> Pending:
    """Validate a 0005 request; return the pending login or raise ``RequestRefused``."""
    if form.get("IB_SERVICE") != "0005":
        raise RequestRefused(f"IB_SERVICE must be '0005', not {form.get('IB_SERVICE')!r}")
    merchant = merchants.get(form.get("IB_SND_ID", ""))
    if merchant is None:
        raise RequestRefused(f"IB_SND_ID {form.get('IB_SND_ID')!r}: no such merchant")
    return_url = merchant.elink_return_url or next(iter(merchant.return_urls), None)
    if not return_url:
        raise RequestRefused(f"no return address is registered for {merchant.merchant_id}")
    lang = form.get("IB_LANG", "LAT").upper()
    return Pending(merchant_id=merchant.merchant_id, return_url=return_url, lang=lang if lang in LANGUAGES else "LAT")


def response_fields(state: BankState, pending: Pending, person: DemoPerson, mode: tuple[str, int] | None,
                    now: datetime) -> list[tuple[str, str]]:
    """Return the signed response for ``person``, misbehaving as ``mode`` asks."""
    name, seconds = mode or ("", 0)
    stamp = now + timedelta(seconds={"stale": -seconds, "future": seconds}.get(name, 0))
    sender = "EVIL_BANK" if name == "wrong_sender" else state.profile.sender_id
    if state.profile.protocol == "v009":
        fields = v009_response(state.key, pending, person, stamp, sender)
    else:
        fields = elink_response(state.key, pending, person, stamp, sender)
    if name == "bad_mac":  # altered after signing: someone else's identity under the bank's signature
        other = next(p for p in PERSONS if p.personal_code != person.personal_code)
        fields = {k: v.replace(person.personal_code, other.personal_code) for k, v in fields.items()}
    return list(fields.items())


def v009_response(key: rsa.RSAPrivateKey, pending: Pending, person: DemoPerson, stamp: datetime,
                  sender: str) -> dict[str, str]:
    """Build and sign a 3013 response."""
    fields = {
        "VK_SERVICE": "3013", "VK_VERSION": "009",
        "VK_DATETIME": stamp.astimezone(RIGA).strftime("%Y-%m-%dT%H:%M:%S%z"),
        "VK_SND_ID": sender, "VK_REC_ID": pending.merchant_id, "VK_NONCE": pending.nonce,
        "VK_USER_NAME": person.name, "VK_USER_ID": person.personal_code, "VK_COUNTRY": "LV", "VK_OTHER": "",
        "VK_TOKEN": "7", "VK_RID": pending.rid,
    }
    fields["VK_MAC"] = rsa_sign(key, mac_source([fields[name] for name in V009_RESPONSE_MAC]))
    fields["VK_ENCODING"] = "UTF-8"
    fields["VK_LANG"] = pending.lang
    return fields


def elink_response(key: rsa.RSAPrivateKey, pending: Pending, person: DemoPerson, stamp: datetime,
                   sender: str) -> dict[str, str]:
    """Build and sign a 0001 response (names in capitals, as SEB sends them)."""
    local = stamp.astimezone(RIGA)
    fields = {
        "IB_SND_ID": sender, "IB_SERVICE": "0001", "IB_REC_ID": pending.merchant_id,
        "IB_USER": person.personal_code, "IB_DATE": local.strftime("%d.%m.%Y"), "IB_TIME": local.strftime("%H:%M:%S"),
        "IB_USER_INFO": f"ID={person.personal_code};NAME={person.name.upper()}", "IB_VERSION": "001",
    }
    fields["IB_CRC"] = rsa_sign(key, mac_source([fields[name] for name in ELINK_RESPONSE_CRC]))
    fields["IB_LANG"] = pending.lang
    return fields


def create_app(merchants: dict[str, Any] | None = None) -> Flask:
    """Create the simulator; ``merchants`` defaults to ``SIM_BANK_MERCHANTS`` (JSON)."""
    app = Flask(__name__)
    registry = load_merchants(merchants if merchants is not None
                              else json.loads(os.environ.get("SIM_BANK_MERCHANTS") or "{}"))
    keys_dir = os.environ.get("SIM_BANK_KEYS_DIR") or None
    banks: dict[str, BankState] = {}
    for profile in BANKS.values():
        key = bank_key(profile.bank_id, keys_dir)
        banks[profile.bank_id] = BankState(profile, key, self_signed_certificate(profile, key))
    lock = threading.Lock()

    def bank(bank_id: str) -> BankState:
        return banks.get(bank_id) or abort(404)

    def refuse(state: BankState, error: str) -> tuple[str, int]:
        return render_template_string(ERROR_PAGE, bank=state.profile, error=error), 400

    def start(state: BankState, pending: Pending) -> str:
        session = secrets.token_urlsafe(16)
        with lock:
            state.pending[session] = pending
        return render_template_string(LOGIN_PAGE, bank=state.profile, merchant=pending.merchant_id,
                                      persons=PERSONS, action=f"/{state.profile.bank_id}/login/{session}")

    def return_form(state: BankState, url: str, fields: list[tuple[str, str]]) -> str:
        return render_template_string(RETURN_PAGE, bank=state.profile, url=url, fields=fields)

    @app.post(BANKS["swedbank"].path)
    def v009_request() -> Any:
        state = banks["swedbank"]
        try:
            return start(state, check_v009_request(request.form.to_dict(), state.profile, registry))
        except RequestRefused as exc:
            return refuse(state, str(exc))

    @app.post(BANKS["seb"].path)
    def elink_request() -> Any:
        state = banks["seb"]
        try:
            return start(state, check_elink_request(request.form.to_dict(), registry))
        except RequestRefused as exc:
            return refuse(state, str(exc))

    @app.post("/<bank_id>/login/<session>")
    def decide(bank_id: str, session: str) -> Any:
        state = bank(bank_id)
        with lock:
            pending = state.pending.pop(session, None)
        if pending is None:
            return refuse(state, "this login session is unknown or already finished")
        if request.form.get("action") != "confirm":
            return return_form(state, pending.return_url, [])
        person = PERSON_BY_CODE.get(request.form.get("person", ""))
        if person is None:
            return refuse(state, "choose a demo customer")
        with lock:
            mode, state.next_mode = state.next_mode, None
            fields = response_fields(state, pending, person, mode, datetime.now(UTC))
            state.last = (pending.return_url, fields)
        return return_form(state, pending.return_url, fields)

    @app.get("/test/<bank_id>/certificate.pem")
    def certificate(bank_id: str) -> Response:
        return Response(bank(bank_id).certificate_pem, mimetype="application/x-pem-file")

    @app.post("/test/<bank_id>/next-response")
    def next_response(bank_id: str) -> Any:
        state = bank(bank_id)
        body = request.get_json(silent=True) or {}
        if body.get("mode") not in MODES:
            return jsonify({"error": f"mode must be one of {', '.join(MODES)}"}), 400
        with lock:
            state.next_mode = (body["mode"], int(body.get("seconds", 600)))
        return "", 204

    @app.post("/test/<bank_id>/replay")
    def replay(bank_id: str) -> Any:
        state = bank(bank_id)
        if state.last is None:
            return jsonify({"error": "no response yet"}), 409
        return return_form(state, *state.last)

    @app.get("/test/<bank_id>/last-response")
    def last_response(bank_id: str) -> Any:
        state = bank(bank_id)
        if state.last is None:
            return jsonify({"error": "no response yet"}), 409
        return jsonify({"url": state.last[0], "fields": dict(state.last[1])})

    return app
