"""An eParaksts (LVRTC TrustedX) simulator speaking the protocol of docs/eid.md, "eParaksts".

Endpoints (``{as}`` is ``lvrtc-eipsign-as`` or ``lvrtc-eips-as``):

* ``GET /trustedx-authserver/oauth/{as}?response_type=code&client_id=&redirect_uri=&scope=&state=&prompt=
  &acr_values=&ui_locales=`` – the login page. An unknown ``client_id`` or a ``redirect_uri`` that is not
  exactly one registered for the client is answered 400 on the page (never redirected, RFC 6749 §4.1.2.1);
  other problems go back to the client as ``redirect_uri?error=…&error_description=…&state=…``
  (``invalid_request``, ``unsupported_response_type``, ``invalid_scope``; ``login_required`` for
  ``prompt=none``, as the simulator keeps no single sign-on session). The page lets the simulated person pick
  a demo identity and a method (eParaksts mobile, eID card with the browser plugin, eID card over NFC; an
  ``acr_values`` flow fixes the method) and **Confirm** (→ ``?code=…&state=…``) or **Cancel**
  (→ ``?error=access_denied&state=…``).
* ``POST /trustedx-authserver/oauth/{as}/token`` – HTTP Basic client authentication, form body
  ``grant_type=authorization_code&code=&redirect_uri=``. Codes are single use (a second use is
  ``invalid_grant`` and revokes the token the first use got) and expire after ``SIM_EPARAKSTS_CODE_TTL``
  seconds. Errors are RFC 6749 §5.2 JSON: ``invalid_client`` (401, ``WWW-Authenticate: Basic``),
  ``invalid_request``, ``invalid_grant``, ``unsupported_grant_type``. ``client_credentials`` is granted too,
  but userinfo refuses such a token, as the documentation says. Success:
  ``{"access_token", "token_type": "Bearer", "expires_in"}``, no refresh token.
* ``GET /trustedx-resources/openid/v1/users/me`` with ``Authorization: Bearer …`` – the documented claims:
  ``sub, domain, acr, amr, given_name, family_name, name, serial_number, eips`` (the identity claims only
  under the scope ``urn:lvrtc:fpeil:aa``). A missing, unknown or expired token: 401 with
  ``WWW-Authenticate: Bearer error="invalid_token"``.

Test controls (not part of the real service):

* ``POST /test/faults/token`` or ``/test/faults/userinfo`` with ``{"fault": NAME, "delay": seconds}`` queues a
  fault for the next call of that endpoint (one fault per call, first in, first out).
  Token faults: ``http_500``, ``http_503``, ``invalid_grant``, ``invalid_client``, ``malformed_json``,
  ``no_access_token``, ``delay``. Userinfo faults: ``http_500``, ``http_401``, ``malformed_json``,
  ``missing_serial_number``, ``bad_serial_number`` (check digit wrong), ``foreign_serial_number``
  (``PNOEE-…``), ``low_acr``, ``delay``. ``GET /test/faults`` lists, ``DELETE /test/faults`` clears.
* ``GET /test/persons`` lists the demo persons.

Configuration:

* ``SIM_EPARAKSTS_CLIENTS`` – the registered clients, JSON
  ``{"<client_id>": {"secret": "…", "redirect_uris": ["…"], "scopes": ["urn:lvrtc:fpeil:aa"]}}`` (``scopes``
  optional, default the identification scope). Default: client ``klients``, secret ``dev-eparaksts-secret``,
  redirect URIs ``http://127.0.0.1:8001/login/eparaksts/callback`` (``make run``) and
  ``http://127.0.0.1:18001/login/eparaksts/callback`` (the test stack).
* ``SIM_EPARAKSTS_CODE_TTL`` – seconds an authorization code is valid, default ``60``.
* ``SIM_EPARAKSTS_TOKEN_TTL`` – seconds an access token is valid, default ``600``.

State is in memory: it is a simulator.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Flask, Response, jsonify, redirect, render_template_string, request
from werkzeug.wrappers import Response as Answer

AUTHORIZATION_SERVERS = ("lvrtc-eipsign-as", "lvrtc-eips-as")
IDENTIFICATION_SCOPE = "urn:lvrtc:fpeil:aa"
LEVEL_HIGH = "urn:safelayer:tws:policies:authentication:level:high"
EIPS = 'VAS "Latvijas Valsts radio un televīzijas centrs"'
DEFAULT_CLIENTS = {"klients": {"secret": "dev-eparaksts-secret", "redirect_uris": [
    "http://127.0.0.1:8001/login/eparaksts/callback", "http://127.0.0.1:18001/login/eparaksts/callback"]}}
PENDING_TTL = 600  # seconds a login page stays usable

# flow (acr_values) → (label, amr)
METHODS = {
    "urn:eparaksts:authentication:flow:mobileid": (
        "eParaksts mobile", "urn:safelayer:tws:policies:authentication:adaptive:methods:mobileid"),
    "urn:eparaksts:authentication:flow:sc_plugin": (
        "eID karte / eID card (sc_plugin)", "urn:eparaksts:tws:policies:authentication:adaptive:methods:sc_plugin"),
    "urn:eparaksts:authentication:flow:mobile-eid": (
        "eID karte ar NFC / eID card over NFC (eID Scan)",
        "urn:safelayer:tws:policies:authentication:adaptive:methods:mobileid"),
}
TOKEN_FAULTS = frozenset({"http_500", "http_503", "invalid_grant", "invalid_client", "malformed_json",
                          "no_access_token", "delay"})
USERINFO_FAULTS = frozenset({"http_500", "http_401", "malformed_json", "missing_serial_number",
                             "bad_serial_number", "foreign_serial_number", "low_acr", "delay"})


@dataclass(frozen=True)
class Person:
    """A demo person eParaksts knows (names in upper case, as eParaksts gives them)."""

    serial_number: str
    given_name: str
    family_name: str
    note: str


PERSONS = (
    Person("PNOLV-010180-15097", "JĀNIS", "BĒRZIŅŠ", "eParaksts documentation's code; holds demo contract LVG-100003"),
    Person("PNOLV-320000-00008", "LAURA", "OZOLIŅA", "new-format personal code (since 2017)"),
    Person("PNOLV-161175-19997", "ANDRIS", "PARAUDZIŠ", "old-format code, no demo contract"),
)


@dataclass
class Grant:
    """What a code or an access token stands for."""

    client_id: str
    scope: str
    expires: float
    redirect_uri: str = ""
    person: Person | None = None
    amr: str = ""
    code: str = ""  # for an access token: the code it was issued for
    used: bool = False


@dataclass
class State:
    """The simulator's memory."""

    clients: dict[str, dict[str, Any]]
    code_ttl: float
    token_ttl: int
    pending: dict[str, dict[str, str]] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Grant] = field(default_factory=dict)
    faults: dict[str, deque[dict[str, Any]]] = field(
        default_factory=lambda: {"token": deque(), "userinfo": deque()})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def purge(self) -> None:
        """Forget expired login pages, codes and tokens."""
        now = time.time()
        with self.lock:
            for tx in [tx for tx, p in self.pending.items() if float(p["expires"]) < now]:
                del self.pending[tx]
            for store in (self.codes, self.tokens):
                for key in [key for key, grant in store.items() if grant.expires < now - PENDING_TTL]:
                    del store[key]

    def next_fault(self, endpoint: str) -> dict[str, Any] | None:
        """Take the next queued fault for ``endpoint``, if any."""
        with self.lock:
            queue = self.faults[endpoint]
            return queue.popleft() if queue else None


PAGE = """<!doctype html><html lang="{{ lang }}"><head><meta charset="utf-8">
<title>eParaksts (simulators)</title></head>
<body><main><h1>eParaksts – {{ "pieteikšanās" if lang == "lv" else "log in" }}</h1>
<p>{{ "Pakalpojums" if lang == "lv" else "Service" }}: <strong>{{ client_id }}</strong></p>
<form method="post"><input type="hidden" name="tx" value="{{ tx }}">
<fieldset><legend>{{ "Persona" if lang == "lv" else "Person" }}</legend>
{% for p in persons %}<label><input type="radio" name="person" value="{{ p.serial_number }}"
{% if loop.first %}checked{% endif %}> {{ p.given_name }} {{ p.family_name }} ({{ p.serial_number }})</label><br>
{% endfor %}</fieldset>
<fieldset><legend>{{ "Veids" if lang == "lv" else "Method" }}</legend>
{% for flow, method in methods.items() %}<label><input type="radio" name="method" value="{{ flow }}"
{% if loop.first %}checked{% endif %}> {{ method[0] }}</label><br>
{% endfor %}</fieldset>
<button name="action" value="confirm">{{ "Apstiprināt" if lang == "lv" else "Confirm" }}</button>
<button name="action" value="cancel">{{ "Atcelt" if lang == "lv" else "Cancel" }}</button>
</form></main></body></html>"""

ERROR_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>eParaksts: error</title></head>
<body><main><h1>Kļūda / Error</h1><p>{{ error }}: {{ description }}</p></main></body></html>"""


def load_clients() -> dict[str, dict[str, Any]]:
    """Return the registered clients from ``SIM_EPARAKSTS_CLIENTS`` (JSON) or the development default."""
    raw = os.environ.get("SIM_EPARAKSTS_CLIENTS", "")
    clients = json.loads(raw) if raw.strip() else DEFAULT_CLIENTS
    for client_id, client in clients.items():
        if not isinstance(client.get("secret"), str) or not isinstance(client.get("redirect_uris"), list):
            raise ValueError(f"SIM_EPARAKSTS_CLIENTS: client {client_id!r} needs secret and redirect_uris")
    return clients


def with_query(url: str, params: dict[str, str | None]) -> str:
    """Return ``url`` with ``params`` added to its query (None values left out)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(query)))


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """Return an RFC 6749 §5.2 error response."""
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if error == "invalid_client":
        response.headers["WWW-Authenticate"] = 'Basic realm="trustedx-authserver"'
    return response


def invalid_token(description: str) -> Response:
    """Return the RFC 6750 §3 answer to a bad bearer token."""
    response = jsonify({"error": "invalid_token", "error_description": description})
    response.status_code = 401
    response.headers["WWW-Authenticate"] = f'Bearer error="invalid_token", error_description="{description}"'
    return response


def basic_credentials() -> tuple[str, str] | None:
    """Return (client_id, secret) from the ``Authorization: Basic`` header, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (client_id, secret) if sep else None


def userinfo_claims(grant: Grant) -> dict[str, Any]:
    """Return the claims for a user grant, as the documentation's example has them."""
    person = grant.person
    assert person is not None
    claims: dict[str, Any] = {
        "sub": hashlib.sha256(f"sim-eparaksts:{person.serial_number}".encode()).hexdigest()[:32],
        "domain": "citizen", "acr": LEVEL_HIGH, "amr": [grant.amr]}
    if IDENTIFICATION_SCOPE in grant.scope.split():
        claims.update(given_name=person.given_name, family_name=person.family_name,
                      name=f"{person.given_name} {person.family_name}", serial_number=person.serial_number, eips=EIPS)
    return claims


def faulty_claims(claims: dict[str, Any], fault: str) -> dict[str, Any]:
    """Return ``claims`` changed as a userinfo ``fault`` asks."""
    changed = dict(claims)
    if fault == "missing_serial_number":
        changed.pop("serial_number", None)
    elif fault == "bad_serial_number":
        changed["serial_number"] = "PNOLV-010180-15098"
    elif fault == "foreign_serial_number":
        changed["serial_number"] = "PNOEE-38001085718"
    elif fault == "low_acr":
        changed["acr"] = "urn:safelayer:tws:policies:authentication:level:low"
    return changed


def create_app() -> Flask:
    """Create the simulator."""
    app = Flask(__name__)
    state = State(clients=load_clients(), code_ttl=float(os.environ.get("SIM_EPARAKSTS_CODE_TTL", "60")),
                  token_ttl=int(os.environ.get("SIM_EPARAKSTS_TOKEN_TTL", "600")))
    persons = {p.serial_number: p for p in PERSONS}

    def check_authorize(args: dict[str, str]) -> Answer | None:
        """Return the error answer to an authorization request, or None if it is acceptable."""
        client = state.clients.get(args.get("client_id", ""))
        if client is None:
            return error_page("invalid_client", "unknown client_id")
        if args.get("redirect_uri") not in client["redirect_uris"]:
            return error_page("invalid_request", "redirect_uri is not registered for this client")
        back = args["redirect_uri"]

        def to_client(error: str, description: str) -> Answer:
            return redirect(with_query(back, {"error": error, "error_description": description,
                                              "state": args.get("state")}))

        if not args.get("response_type"):
            return to_client("invalid_request", "response_type is required")
        if args["response_type"] != "code":
            return to_client("unsupported_response_type", "only response_type=code is supported")
        scopes = args.get("scope", "").split()
        if not scopes:
            return to_client("invalid_request", "scope is required")
        if any(scope not in client.get("scopes", [IDENTIFICATION_SCOPE]) for scope in scopes):
            return to_client("invalid_scope", "a requested scope is unknown or not granted to this client")
        if args.get("prompt") == "none":
            return to_client("login_required", "the user is not logged in")
        return None

    def error_page(error: str, description: str) -> Response:
        """Answer a request that cannot safely be redirected back."""
        return Response(render_template_string(ERROR_PAGE, error=error, description=description), 400)

    @app.get("/trustedx-authserver/oauth/<server>")
    def authorize(server: str) -> Any:
        if server not in AUTHORIZATION_SERVERS:
            return error_page("not_found", "unknown authorization server"), 404
        args = request.args.to_dict()
        state.purge()
        refusal = check_authorize(args)
        if refusal is not None:
            return refusal
        flow = args.get("acr_values", "")
        methods = {flow: METHODS[flow]} if flow in METHODS else METHODS
        tx = secrets.token_urlsafe(24)
        with state.lock:
            state.pending[tx] = {**args, "expires": str(time.time() + PENDING_TTL), "server": server}
        locales = (args.get("ui_locales") or "lv").split()
        lang = "en" if locales and locales[0].lower().startswith("en") else "lv"
        return render_template_string(PAGE, lang=lang, tx=tx, client_id=args["client_id"], persons=PERSONS,
                                      methods=methods)

    @app.post("/trustedx-authserver/oauth/<server>")
    def decide(server: str) -> Any:
        with state.lock:
            pending = state.pending.pop(request.form.get("tx", ""), None)
        if pending is None or pending["server"] != server or float(pending["expires"]) < time.time():
            return error_page("invalid_request", "this login page has expired; start again")
        back: dict[str, str | None] = {"state": pending.get("state")}
        if request.form.get("action") != "confirm":
            return redirect(with_query(pending["redirect_uri"], {"error": "access_denied", **back,
                                                                 "error_description": "the user cancelled"}))
        person = persons.get(request.form.get("person", ""))
        method = request.form.get("method", "")
        if person is None or method not in METHODS:
            return error_page("invalid_request", "choose a person and a method")
        code = secrets.token_urlsafe(32)
        with state.lock:
            state.codes[code] = Grant(client_id=pending["client_id"], scope=pending["scope"], person=person,
                                      expires=time.time() + state.code_ttl, redirect_uri=pending["redirect_uri"],
                                      amr=METHODS[method][1])
        return redirect(with_query(pending["redirect_uri"], {"code": code, **back}))

    def issue(grant: Grant) -> Response:
        """Store an access token for ``grant`` and answer it."""
        token = secrets.token_urlsafe(32)
        grant.expires = time.time() + state.token_ttl
        with state.lock:
            state.tokens[token] = grant
        response = jsonify({"access_token": token, "token_type": "Bearer", "expires_in": state.token_ttl})
        response.headers.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        return response

    def redeem(client_id: str) -> Response:
        """Answer ``grant_type=authorization_code`` for an authenticated client."""
        code = request.form.get("code", "")
        if not code or not request.form.get("redirect_uri"):
            return oauth_error("invalid_request", "code and redirect_uri are required")
        with state.lock:
            grant = state.codes.get(code)
            if grant is not None and grant.used:  # RFC 6749 §4.1.2: revoke what the first use got
                for token in [t for t, g in state.tokens.items() if g.code == code]:
                    del state.tokens[token]
            reused = grant is not None and grant.used
            if grant is not None:
                grant.used = True
        if grant is None or reused or grant.expires < time.time():
            return oauth_error("invalid_grant", "the code is invalid, expired or already used")
        if grant.client_id != client_id or grant.redirect_uri != request.form["redirect_uri"]:
            return oauth_error("invalid_grant", "the code was issued to another client or redirect_uri")
        return issue(Grant(client_id=client_id, scope=grant.scope, expires=0, person=grant.person, amr=grant.amr,
                           code=code))

    def token_fault(fault: dict[str, Any]) -> Response | None:
        """Answer as a token ``fault`` asks (None: carry on normally)."""
        name = fault["fault"]
        if name == "delay":
            time.sleep(float(fault["delay"]))
            return None
        if name in ("http_500", "http_503"):
            return Response("<html><body>Service unavailable</body></html>", int(name[5:]), mimetype="text/html")
        if name == "malformed_json":
            return Response('{"access_token": "', 200, mimetype="application/json")
        if name == "no_access_token":
            return jsonify({"token_type": "Bearer", "expires_in": state.token_ttl})
        return oauth_error(name, "simulated fault", 401 if name == "invalid_client" else 400)

    @app.post("/trustedx-authserver/oauth/<server>/token")
    def token(server: str) -> Any:
        if server not in AUTHORIZATION_SERVERS:
            return oauth_error("invalid_request", "unknown authorization server", 404)
        fault = state.next_fault("token")
        answer = token_fault(fault) if fault else None
        if answer is not None:
            return answer
        credentials = basic_credentials()
        client = state.clients.get(credentials[0]) if credentials else None
        if credentials is None or client is None or \
                not hmac.compare_digest(client["secret"].encode(), credentials[1].encode("utf-8", "replace")):
            return oauth_error("invalid_client", "client authentication failed", 401)
        if request.mimetype != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request", "the body must be application/x-www-form-urlencoded")
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            return redeem(credentials[0])
        if grant_type == "client_credentials":
            return issue(Grant(client_id=credentials[0], scope=request.form.get("scope", ""), expires=0))
        return oauth_error("unsupported_grant_type", "use grant_type=authorization_code")

    @app.get("/trustedx-resources/openid/v1/users/me")
    def users_me() -> Any:
        fault = state.next_fault("userinfo")
        name = fault["fault"] if fault else ""
        if fault and name == "delay":
            time.sleep(float(fault["delay"]))
        if name == "http_500":
            return Response("<html><body>Internal Server Error</body></html>", 500, mimetype="text/html")
        if name == "http_401":
            return invalid_token("the access token is not valid")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            response = Response("", 401)
            response.headers["WWW-Authenticate"] = 'Bearer realm="trustedx-resources"'
            return response
        with state.lock:
            grant = state.tokens.get(token.strip())
        if grant is None or grant.expires < time.time():
            return invalid_token("the access token is invalid or expired")
        if grant.person is None:
            return invalid_token("a client credentials token carries no user")
        if name == "malformed_json":
            return Response('{"sub": "ddf1', 200, mimetype="application/json")
        return jsonify(faulty_claims(userinfo_claims(grant), name))

    @app.post("/test/faults/<endpoint>")
    def add_fault(endpoint: str) -> Any:
        body = request.get_json(silent=True) or {}
        allowed = {"token": TOKEN_FAULTS, "userinfo": USERINFO_FAULTS}.get(endpoint)
        if allowed is None or body.get("fault") not in allowed:
            return jsonify({"error": "unknown endpoint or fault", "token": sorted(TOKEN_FAULTS),
                            "userinfo": sorted(USERINFO_FAULTS)}), 400
        with state.lock:
            state.faults[endpoint].append({"fault": body["fault"], "delay": float(body.get("delay", 1))})
        return jsonify({"queued": body["fault"], "endpoint": endpoint}), 201

    @app.get("/test/faults")
    def list_faults() -> Any:
        with state.lock:
            return jsonify({endpoint: list(queue) for endpoint, queue in state.faults.items()})

    @app.delete("/test/faults")
    def clear_faults() -> Any:
        with state.lock:
            for queue in state.faults.values():
                queue.clear()
        return "", 204

    @app.get("/test/persons")
    def list_persons() -> Any:
        return jsonify([{"serial_number": p.serial_number, "given_name": p.given_name,
                         "family_name": p.family_name, "note": p.note} for p in PERSONS])

    return app
