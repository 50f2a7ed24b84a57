"""eParaksts login (LVRTC e-identity "Integration platform", Safelayer TrustedX), docs/eid.md, "eParaksts".

Protocol: OAuth 2.0 authorization-code flow. It is not full OpenID Connect: the token response carries no
``id_token`` and nothing is signed, so the access token is opaque and the identity is taken only from the
userinfo endpoint, over TLS, right after the code exchange.

* authorize: ``GET {base}/trustedx-authserver/oauth/{as}?response_type=code&client_id=&redirect_uri=&scope=
  &state=&prompt=login&ui_locales=lv[&acr_values=]`` → the browser comes back to
  ``redirect_uri?code=…&state=…`` or ``redirect_uri?error=…&error_description=…&state=…``;
* token: ``POST {base}/trustedx-authserver/oauth/{as}/token`` with ``Authorization: Basic
  base64(client_id:client_secret)`` and the form ``grant_type=authorization_code&redirect_uri=…&code=…`` →
  ``{"access_token", "token_type": "Bearer", "expires_in"}`` (no refresh token);
* userinfo: ``GET {base}/trustedx-resources/openid/v1/users/me`` with ``Authorization: Bearer …`` →
  ``{"sub", "domain", "acr", "amr", "given_name", "family_name", "name", "serial_number": "PNOLV-…", "eips"}``.

How identity's login pages use it::

    client = EparakstsClient(config)
    state = secrets.token_urlsafe(32)          # kept in the person's web session
    redirect(client.authorization_url(state=state, ui_locales="lv"))
    ...                                        # callback: the CALLER checks state, the connector cannot
    if not hmac.compare_digest(session.pop("eparaksts_state", ""), request.args.get("state", "")): refuse
    identity = client.finish(code=request.args.get("code"), error=request.args.get("error"),
                             error_description=request.args.get("error_description"))
    # then rotate the web session id (docs/security.md, case 27)

The ``state`` comparison is the caller's job: only the caller's web session knows the value it sent, and a
missing or wrong ``state`` must end the login before ``finish`` is called (it protects against login CSRF).

Assurance: the userinfo ``acr`` must be the TrustedX level ``…:authentication:level:high`` (the official
example) or one of the eParaksts flow URIs (which some deployments echo; the public documentation does not
settle it); anything else is refused. A successful login is eIDAS **high** (docs/eid.md,
"Levels of assurance"). ``amr`` becomes ``eid_card`` (smart card through the browser plugin, or an eID card
read over NFC when that flow was requested), ``eparaksts_mobile`` (eParaksts mobile) or, for a method this
code does not know, ``eparaksts``.

Every failure raises ``LoginFailed`` with one of these codes (``retry``: whether trying eParaksts again
can help):

* ``eparaksts_cancelled`` – the person cancelled (``error=access_denied``). Retry: yes.
* ``eparaksts_login_failed`` – another end-user error on the redirect (``login_required``, unknown errors).
  Retry: yes.
* ``eparaksts_misconfigured`` – the redirect says our request was wrong (``invalid_request``,
  ``invalid_scope``, ``unauthorized_client``, ``unsupported_response_type``). Retry: no.
* ``eparaksts_no_code`` – the redirect carried neither ``code`` nor ``error``. Retry: yes.
* ``eparaksts_code_rejected`` – token endpoint ``invalid_grant`` (code expired, used, or issued for another
  redirect). Retry: yes.
* ``eparaksts_client_rejected`` – token endpoint ``invalid_client``/``unauthorized_client`` or HTTP 401 (wrong
  client id or secret). Retry: no.
* ``eparaksts_token_error`` – the token endpoint refused otherwise (``invalid_request``,
  ``unsupported_grant_type`` …). Retry: no.
* ``eparaksts_token_rejected`` – userinfo refused the access token (HTTP 401/403). Retry: yes.
* ``eparaksts_unavailable`` – ``server_error``/``temporarily_unavailable`` on the redirect; HTTP 5xx or 429
  from the token or userinfo endpoint. Retry: yes.
* ``eparaksts_timeout`` – no answer within ``http_timeout``. Retry: yes.
* ``eparaksts_unreachable`` – connection refused, DNS or TLS failure. Retry: yes.
* ``eparaksts_bad_response`` – an answer that is not the documented JSON (malformed, no access token, an
  unexpected status, no usable name). Retry: yes.
* ``eparaksts_no_personal_code`` – userinfo without ``serial_number``. Retry: no.
* ``eparaksts_not_latvian`` – a ``serial_number`` that is not ``PNOLV-…`` (another country's identifier).
  Retry: no.
* ``eparaksts_invalid_personal_code`` – ``PNOLV-…`` whose code fails the checks of docs/eid.md, "Personal codes" (shape,
  birth date, check digit).
  Retry: no.
* ``eparaksts_insufficient_assurance`` – the userinfo ``acr`` is missing or not high. Retry: no.

Nothing secret is logged: not the client secret, the code, the access token nor the personal code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests

from klients_common.assurance import LOA_HIGH
from klients_common.personal_code import normalise_personal_code

from .base import LoginFailed, VerifiedIdentity

log = logging.getLogger(__name__)

IDENTIFICATION_SCOPE = "urn:lvrtc:fpeil:aa"
DEFAULT_AUTHORIZATION_SERVER = "lvrtc-eipsign-as"
AUTHORIZE_PATH = "/trustedx-authserver/oauth/{server}"
TOKEN_PATH = "/trustedx-authserver/oauth/{server}/token"  # noqa: S105 - a path, not a secret
USERINFO_PATH = "/trustedx-resources/openid/v1/users/me"

FLOW_MOBILEID = "urn:eparaksts:authentication:flow:mobileid"
FLOW_SC_PLUGIN = "urn:eparaksts:authentication:flow:sc_plugin"
FLOW_MOBILE_EID = "urn:eparaksts:authentication:flow:mobile-eid"
LEVEL_HIGH = "urn:safelayer:tws:policies:authentication:level:high"
HIGH_ACRS = frozenset({LEVEL_HIGH, FLOW_MOBILEID, FLOW_SC_PLUGIN, FLOW_MOBILE_EID})
SERIAL_PREFIX = "PNOLV-"
MAX_LOGGED = 200  # characters of provider-supplied text kept in a log line

FAILURES: dict[str, tuple[str, str, bool]] = {
    "eparaksts_cancelled": (
        "Pieteikšanās ar eParakstu tika atcelta.",
        "The eParaksts login was cancelled.", True),
    "eparaksts_login_failed": (
        "eParaksts nepabeidza pieteikšanos. Lūdzu, mēģiniet vēlreiz.",
        "eParaksts did not complete the login. Please try again.", True),
    "eparaksts_misconfigured": (
        "Pieteikšanās ar eParakstu pašlaik nav iespējama mūsu sistēmas iestatījumu kļūdas dēļ. "
        "Lūdzu, izvēlieties citu pieteikšanās veidu.",
        "Login with eParaksts is not possible at the moment because of a configuration error on our side. "
        "Please choose another login method.", False),
    "eparaksts_no_code": (
        "No eParaksts netika saņemts pieteikšanās apstiprinājums. Lūdzu, mēģiniet vēlreiz.",
        "No login confirmation came back from eParaksts. Please try again.", True),
    "eparaksts_code_rejected": (
        "Pieteikšanās apstiprinājums vairs nav derīgs (tas ir novecojis vai jau izmantots). "
        "Lūdzu, piesakieties vēlreiz.",
        "The login confirmation is no longer valid (it expired or was already used). Please log in again.",
        True),
    "eparaksts_client_rejected": (
        "eParaksts neatpazina mūsu pakalpojumu, tāpēc pieteikšanās ar eParakstu pašlaik nav iespējama. "
        "Lūdzu, izvēlieties citu pieteikšanās veidu.",
        "eParaksts did not recognise our service, so login with eParaksts is not possible at the moment. "
        "Please choose another login method.", False),
    "eparaksts_token_error": (
        "eParaksts noraidīja pieteikšanās pabeigšanu. Lūdzu, izvēlieties citu pieteikšanās veidu.",
        "eParaksts refused to complete the login. Please choose another login method.", False),
    "eparaksts_token_rejected": (
        "eParaksts neizsniedza jūsu personas datus. Lūdzu, piesakieties vēlreiz.",
        "eParaksts did not release your personal details. Please log in again.", True),
    "eparaksts_unavailable": (
        "eParaksts pakalpojums pašlaik nav pieejams. Lūdzu, mēģiniet vēlāk vai izvēlieties citu "
        "pieteikšanās veidu.",
        "The eParaksts service is not available at the moment. Please try again later or choose another "
        "login method.", True),
    "eparaksts_timeout": (
        "eParaksts neatbildēja laikā. Lūdzu, mēģiniet vēlreiz.",
        "eParaksts did not answer in time. Please try again.", True),
    "eparaksts_unreachable": (
        "Neizdevās sazināties ar eParaksts pakalpojumu. Lūdzu, mēģiniet vēlāk.",
        "We could not connect to the eParaksts service. Please try again later.", True),
    "eparaksts_bad_response": (
        "eParaksts atbildēja neparedzētā veidā. Lūdzu, mēģiniet vēlreiz.",
        "eParaksts gave an unexpected answer. Please try again.", True),
    "eparaksts_no_personal_code": (
        "eParaksts nenodeva jūsu personas kodu, tāpēc mēs nevaram jūs identificēt. "
        "Lūdzu, izvēlieties citu pieteikšanās veidu.",
        "eParaksts did not pass on your personal code, so we cannot identify you. "
        "Please choose another login method.", False),
    "eparaksts_not_latvian": (
        "Pieteikties var tikai ar Latvijas personas kodu. Jūsu eParaksts identitāte ir izsniegta ar citas "
        "valsts identifikatoru.",
        "Only a Latvian personal code can be used to log in. Your eParaksts identity carries another "
        "country's identifier.", False),
    "eparaksts_invalid_personal_code": (
        "eParaksts nodeva personas kodu, kas nav derīgs Latvijas personas kods. Lūdzu, sazinieties ar mums.",
        "eParaksts passed on a personal code that is not a valid Latvian personal code. Please contact us.",
        False),
    "eparaksts_insufficient_assurance": (
        "eParaksts neapstiprināja pieteikšanos ar augstu drošības līmeni. Lūdzu, izvēlieties citu "
        "pieteikšanās veidu.",
        "eParaksts did not confirm the login at a high level of assurance. Please choose another login method.",
        False),
}

AUTHORIZE_ERRORS = {
    "access_denied": "eparaksts_cancelled",
    "server_error": "eparaksts_unavailable",
    "temporarily_unavailable": "eparaksts_unavailable",
    "invalid_request": "eparaksts_misconfigured",
    "invalid_scope": "eparaksts_misconfigured",
    "unauthorized_client": "eparaksts_misconfigured",
    "unsupported_response_type": "eparaksts_misconfigured",
}
TOKEN_ERRORS = {
    "invalid_grant": "eparaksts_code_rejected",
    "invalid_client": "eparaksts_client_rejected",
    "unauthorized_client": "eparaksts_client_rejected",
}


def login_failed(code: str, reason: str) -> LoginFailed:
    """Log ``reason`` (which must hold nothing secret) and return the ``LoginFailed`` for ``code``."""
    message_lv, message_en, retry = FAILURES[code]
    log.warning("eParaksts login failed: %s (%s)", code, reason)
    return LoginFailed(code, message_lv, message_en, retry=retry)


def _quoted(text: str | None) -> str:
    """Return provider-supplied text safe for one log line."""
    return repr((text or "")[:MAX_LOGGED])


@dataclass(frozen=True)
class EparakstsConfig:
    """Identity's registration at LVRTC (or at the simulator)."""

    base_url: str  # "https://eidas.eparaksts.lv", "https://eidas-demo.eparaksts.lv" or the simulator
    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str  # identity's callback URL, registered with LVRTC
    scope: str = IDENTIFICATION_SCOPE
    acr_values: str | None = None  # e.g. FLOW_MOBILEID; None lets the person choose
    http_timeout: float = 10.0  # seconds, for connecting and for each read
    authorization_server: str = DEFAULT_AUTHORIZATION_SERVER  # "{as}" in the paths

    def url(self, template: str) -> str:
        """Return the absolute URL of an endpoint path template."""
        return self.base_url.rstrip("/") + template.format(server=self.authorization_server)


class EparakstsClient:
    """The eParaksts connector: builds the authorization URL and turns the redirect into an identity."""

    def __init__(self, config: EparakstsConfig, session: requests.Session | None = None) -> None:
        self.config = config
        self._session = session  # the caller's (it closes it); otherwise one per login

    def authorization_url(self, *, state: str, ui_locales: str = "lv", prompt_login: bool = True) -> str:
        """Return where to send the person's browser; ``state`` must be kept in their web session."""
        if not state:
            raise ValueError("state is required (random, kept in the web session, checked on the callback)")
        params = {"response_type": "code", "client_id": self.config.client_id,
                  "redirect_uri": self.config.redirect_uri, "scope": self.config.scope, "state": state,
                  "ui_locales": ui_locales}
        if prompt_login:
            params["prompt"] = "login"
        if self.config.acr_values:
            params["acr_values"] = self.config.acr_values
        return f"{self.config.url(AUTHORIZE_PATH)}?{urlencode(params)}"

    def finish(self, *, code: str | None, error: str | None = None,
               error_description: str | None = None) -> VerifiedIdentity:
        """Turn the callback's parameters into a verified identity, or raise ``LoginFailed``.

        The caller has already checked ``state`` against the person's web session."""
        if error:
            raise self._authorize_error(error, error_description)
        if not code:
            raise login_failed("eparaksts_no_code", "callback without code or error")
        with self._http() as http:
            access_token = self._exchange(http, code)
            claims = self._userinfo(http, access_token)
        return identity_from_userinfo(claims, requested_flow=self.config.acr_values)

    @staticmethod
    def _authorize_error(error: str, description: str | None) -> LoginFailed:
        """Map an ``error`` returned on the redirect."""
        code = AUTHORIZE_ERRORS.get(error, "eparaksts_login_failed")
        return login_failed(code, f"authorize error {_quoted(error)}: {_quoted(description)}")

    @contextmanager
    def _http(self) -> Iterator[requests.Session]:
        """Yield the caller's session, or a fresh one closed afterwards."""
        if self._session is not None:
            yield self._session
            return
        with requests.Session() as session:
            yield session

    def _exchange(self, http: requests.Session, code: str) -> str:
        """Exchange the authorization code for an access token (HTTP Basic client authentication)."""
        response = self._call(http, "POST", self.config.url(TOKEN_PATH), step="token",
                              auth=(self.config.client_id, self.config.client_secret),
                              data={"grant_type": "authorization_code", "redirect_uri": self.config.redirect_uri,
                                    "code": code})
        if response.status_code != 200:
            raise _token_failure(response)
        body = _json_object(response, step="token")
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise login_failed("eparaksts_bad_response", "token response without access_token")
        if str(body.get("token_type", "Bearer")).lower() != "bearer":
            raise login_failed("eparaksts_bad_response", f"token_type {_quoted(str(body.get('token_type')))}")
        return token

    def _userinfo(self, http: requests.Session, access_token: str) -> dict[str, Any]:
        """Fetch the person's claims with the access token."""
        response = self._call(http, "GET", self.config.url(USERINFO_PATH), step="userinfo",
                              headers={"Authorization": f"Bearer {access_token}"})
        if response.status_code in (401, 403):
            raise login_failed("eparaksts_token_rejected", f"userinfo HTTP {response.status_code}")
        if response.status_code >= 500 or response.status_code == 429:
            raise login_failed("eparaksts_unavailable", f"userinfo HTTP {response.status_code}")
        if response.status_code != 200:
            raise login_failed("eparaksts_bad_response", f"userinfo HTTP {response.status_code}")
        return _json_object(response, step="userinfo")

    def _call(self, http: requests.Session, method: str, url: str, *, step: str, **kwargs: Any) -> requests.Response:
        """Send one request with the configured timeout; map transport failures."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        try:
            return http.request(method, url, headers=headers, timeout=self.config.http_timeout,
                                allow_redirects=False, **kwargs)
        except requests.Timeout as exc:
            raise login_failed("eparaksts_timeout", f"{step}: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise login_failed("eparaksts_unreachable", f"{step}: {type(exc).__name__}") from exc


def _token_failure(response: requests.Response) -> LoginFailed:
    """Map a token endpoint answer other than 200."""
    status = response.status_code
    if status >= 500 or status == 429:
        return login_failed("eparaksts_unavailable", f"token HTTP {status}")
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    reason = f"token HTTP {status} error {_quoted(str(error))}"
    if isinstance(error, str) and error in TOKEN_ERRORS:
        return login_failed(TOKEN_ERRORS[error], reason)
    if status == 401:
        return login_failed("eparaksts_client_rejected", reason)
    if status == 400 and isinstance(error, str):
        return login_failed("eparaksts_token_error", reason)
    return login_failed("eparaksts_bad_response", reason)


def _json_object(response: requests.Response, *, step: str) -> dict[str, Any]:
    """Return the response body as a JSON object, or raise ``eparaksts_bad_response``."""
    try:
        body = response.json()
    except ValueError as exc:
        raise login_failed("eparaksts_bad_response", f"{step}: body is not JSON") from exc
    if not isinstance(body, dict):
        raise login_failed("eparaksts_bad_response", f"{step}: body is not a JSON object")
    return body


def identity_from_userinfo(claims: Mapping[str, Any], *, requested_flow: str | None = None) -> VerifiedIdentity:
    """Check the userinfo claims and return the identity they prove."""
    acr = claims.get("acr")
    if acr not in HIGH_ACRS:
        raise login_failed("eparaksts_insufficient_assurance", f"acr {_quoted(str(acr))}")
    personal_code = personal_code_from_serial_number(claims.get("serial_number"))
    given_name, family_name = _names(claims)
    provider_amr = [item for item in claims.get("amr") or [] if isinstance(item, str)]
    return VerifiedIdentity(
        personal_code=personal_code, given_name=given_name, family_name=family_name, method="eparaksts",
        acr=LOA_HIGH, amr=(klients_amr(provider_amr, acr=str(acr), requested_flow=requested_flow),),
        detail={"sub": claims.get("sub"), "domain": claims.get("domain"), "provider_acr": acr,
                "provider_amr": provider_amr, "eips": claims.get("eips"), "requested_flow": requested_flow})


def personal_code_from_serial_number(serial_number: Any) -> str:
    """Return the normalised Latvian personal code in ``PNOLV-XXXXXX-XXXXX``, or raise ``LoginFailed``."""
    if not isinstance(serial_number, str) or not serial_number.strip():
        raise login_failed("eparaksts_no_personal_code", "userinfo without serial_number")
    serial_number = serial_number.strip().upper()
    if not serial_number.startswith(SERIAL_PREFIX):
        raise login_failed("eparaksts_not_latvian", f"serial_number prefix {_quoted(serial_number[:6])}")
    try:
        return normalise_personal_code(serial_number[len(SERIAL_PREFIX):])
    except ValueError as exc:
        raise login_failed("eparaksts_invalid_personal_code", str(exc)) from exc


def _names(claims: Mapping[str, Any]) -> tuple[str, str]:
    """Return (given name, family name) as eParaksts gives them (upper case); at least one is present."""
    given, family = claims.get("given_name", ""), claims.get("family_name", "")
    if not isinstance(given, str) or not isinstance(family, str) or not (given.strip() or family.strip()):
        raise login_failed("eparaksts_bad_response", "userinfo without usable given_name/family_name")
    return given.strip(), family.strip()


def klients_amr(provider_amr: list[str], *, acr: str, requested_flow: str | None) -> str:
    """Name the method the person used, as Klients tokens say it (docs/tokens.md, "Claims")."""
    methods = {value.rsplit(":", 1)[-1] for value in provider_amr}
    if "sc_plugin" in methods:
        return "eid_card"
    if "mobileid" in methods:  # eParaksts mobile, or an eID card read over NFC ("mobile-eid" flow)
        return "eid_card" if FLOW_MOBILE_EID in (acr, requested_flow) else "eparaksts_mobile"
    return "eparaksts"
