"""The eParaksts connector against the eParaksts simulator, run in process on an ephemeral port.

These tests need neither RabbitMQ nor PostgreSQL: they use none of the suite's session fixtures.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from klients_simulators.eparaksts import create_app

from klients_common.assurance import LOA_HIGH
from klients_identity.connectors.base import LoginFailed
from klients_identity.connectors.eparaksts import (
    FLOW_MOBILE_EID,
    FLOW_SC_PLUGIN,
    EparakstsClient,
    EparakstsConfig,
    identity_from_userinfo,
)
from tests.support.servers import serving

CALLBACK = "http://127.0.0.1:8001/login/eparaksts/callback"
OTHER_CALLBACK = "http://127.0.0.1:18001/login/eparaksts/callback"
SECRET = "dev-eparaksts-secret"
TOKEN_PATH = "/trustedx-authserver/oauth/lvrtc-eipsign-as/token"
USERINFO_PATH = "/trustedx-resources/openid/v1/users/me"
DOCUMENTED_CLAIMS = {"sub", "domain", "acr", "amr", "given_name", "family_name", "name", "serial_number", "eips"}


@dataclass
class Sim:
    """A running simulator."""

    url: str

    def config(self, **changes: Any) -> EparakstsConfig:
        """Return the connector configuration for the simulator's default client."""
        config = EparakstsConfig(base_url=self.url, client_id="klients", client_secret=SECRET, redirect_uri=CALLBACK)
        return replace(config, **changes)

    def fault(self, endpoint: str, fault: str, delay: float | None = None) -> None:
        """Queue a fault for the next call of ``endpoint`` (``token`` or ``userinfo``)."""
        body: dict[str, Any] = {"fault": fault} if delay is None else {"fault": fault, "delay": delay}
        assert requests.post(f"{self.url}/test/faults/{endpoint}", json=body, timeout=5).status_code == 201


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Sim]]:
    """Start simulators (environment variables as keyword arguments); stop them after the test."""
    for name in ("SIM_EPARAKSTS_CLIENTS", "SIM_EPARAKSTS_CODE_TTL", "SIM_EPARAKSTS_TOKEN_TTL"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as running:

        def start(**env: str) -> Sim:
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            return Sim(url=running.enter_context(serving(create_app())))

        yield start


@pytest.fixture
def sim(serve: Callable[..., Sim]) -> Sim:
    """A simulator with the development defaults."""
    return serve()


class FormParser(HTMLParser):
    """Collect the first form of a page the way a browser sees it."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self.radios: dict[str, list[str]] = {}
        self.checked: dict[str, str] = {}
        self.buttons: dict[str, list[str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record form, input and button elements."""
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.action is None:
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.hidden[a["name"]] = a.get("value", "")
        elif tag == "input" and a.get("type") == "radio":
            self.radios.setdefault(a["name"], []).append(a["value"])
            if "checked" in a:
                self.checked[a["name"]] = a["value"]
        elif tag == "button":
            self.buttons.setdefault(a["name"], []).append(a["value"])


def open_login_page(browser: requests.Session, url: str) -> tuple[str, FormParser]:
    """GET the authorization URL and return (the form's absolute action, the parsed form)."""
    page = browser.get(url, allow_redirects=False, timeout=5)
    assert page.status_code == 200, page.text
    form = FormParser()
    form.feed(page.text)
    return urljoin(page.url, form.action or ""), form


def login(sim: Sim, client: EparakstsClient, *, person: str | None = None, method: str | None = None,
          action: str = "confirm", state: str = "st-123") -> dict[str, str]:
    """Go through the login page as a browser would; return the parameters the callback receives."""
    with requests.Session() as browser:
        target, form = open_login_page(browser, client.authorization_url(state=state))
        assert action in form.buttons["action"]
        data = {**form.hidden, **form.checked, "action": action}
        if person:
            assert person in form.radios["person"]
            data["person"] = person
        if method:
            assert method in form.radios["method"]
            data["method"] = method
        answer = browser.post(target, data=data, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text
    location = answer.headers["Location"]
    assert location.startswith(client.config.redirect_uri + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def finish(client: EparakstsClient, callback: dict[str, str]) -> Any:
    """Call ``finish`` with what came back on the callback."""
    return client.finish(code=callback.get("code"), error=callback.get("error"),
                         error_description=callback.get("error_description"))


def failure(call: Callable[[], Any]) -> LoginFailed:
    """Run ``call``, which must raise ``LoginFailed``, and return the exception."""
    with pytest.raises(LoginFailed) as caught:
        call()
    assert caught.value.message_lv and caught.value.message_en and caught.value.message_lv != caught.value.message_en
    return caught.value


def raw_code(sim: Sim) -> str:
    """Log in with the default person and return the authorization code."""
    return login(sim, EparakstsClient(sim.config()))["code"]


# --- the happy paths ------------------------------------------------------------------------------------


def test_login_returns_the_verified_identity(sim):
    client = EparakstsClient(sim.config())
    callback = login(sim, client, person="PNOLV-010180-15097", state="xyz")
    assert callback["state"] == "xyz" and callback["code"]
    identity = finish(client, callback)
    assert identity.personal_code == "010180-15097"
    assert (identity.given_name, identity.family_name) == ("JĀNIS", "BĒRZIŅŠ")
    assert (identity.method, identity.acr, identity.amr) == ("eparaksts", LOA_HIGH, ("eparaksts_mobile",))
    assert identity.detail["domain"] == "citizen"
    assert identity.detail["provider_acr"] == "urn:safelayer:tws:policies:authentication:level:high"
    assert len(identity.detail["sub"]) == 32


def test_new_format_code_with_eid_card(sim):
    client = EparakstsClient(sim.config())
    identity = finish(client, login(sim, client, person="PNOLV-320000-00008", method=FLOW_SC_PLUGIN))
    assert identity.personal_code == "320000-00008"
    assert identity.amr == ("eid_card",)


def test_requested_flow_fixes_the_method(sim):
    client = EparakstsClient(sim.config(acr_values=FLOW_MOBILE_EID))
    with requests.Session() as browser:
        _, form = open_login_page(browser, client.authorization_url(state="s"))
    assert form.radios["method"] == [FLOW_MOBILE_EID]
    identity = finish(client, login(sim, client, person="PNOLV-161175-19997"))
    assert identity.personal_code == "161175-19997"
    assert identity.amr == ("eid_card",)  # an eID card read over NFC reports the mobileid amr


def test_authorization_url_carries_the_documented_parameters(sim):
    client = EparakstsClient(sim.config(acr_values=FLOW_SC_PLUGIN))
    url = urlsplit(client.authorization_url(state="abc", ui_locales="en"))
    assert url.path == "/trustedx-authserver/oauth/lvrtc-eipsign-as"
    assert {k: v[0] for k, v in parse_qs(url.query).items()} == {
        "response_type": "code", "client_id": "klients", "redirect_uri": CALLBACK, "scope": "urn:lvrtc:fpeil:aa",
        "state": "abc", "prompt": "login", "ui_locales": "en", "acr_values": FLOW_SC_PLUGIN}
    assert "prompt" not in parse_qs(urlsplit(client.authorization_url(state="a", prompt_login=False)).query)
    with pytest.raises(ValueError, match="state"):
        client.authorization_url(state="")


def test_a_session_given_by_the_caller_is_used_and_nothing_secret_is_logged(sim, caplog):
    seen: list[requests.Response] = []
    with requests.Session() as session:
        session.hooks["response"].append(lambda response, *args, **kwargs: seen.append(response))
        client = EparakstsClient(sim.config(), session=session)
        callback = login(sim, client)
        with caplog.at_level(logging.DEBUG):
            finish(client, callback)
            failure(lambda: finish(client, callback))  # the code again: refused, and logged
            failure(lambda: finish(EparakstsClient(replace(client.config, client_secret="wrong-secret")),
                                   login(sim, client)))
    token = seen[0].json()["access_token"]
    assert [urlsplit(r.url).path for r in seen[:2]] == [TOKEN_PATH, USERINFO_PATH]
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("klients_identity"))
    assert "eparaksts_code_rejected" in logged and "eparaksts_client_rejected" in logged
    for secret in (SECRET, "wrong-secret", callback["code"], token, "010180-15097"):
        assert secret not in logged
    assert SECRET not in repr(client.config)


# --- the person or the authorization endpoint says no ------------------------------------------------


def test_user_cancels(sim):
    client = EparakstsClient(sim.config())
    callback = login(sim, client, action="cancel", state="keep-me")
    assert callback["error"] == "access_denied" and callback["state"] == "keep-me" and "code" not in callback
    failed = failure(lambda: finish(client, callback))
    assert failed.code == "eparaksts_cancelled" and failed.retry


@pytest.mark.parametrize("redirect_uri", ["http://127.0.0.1:8001/login/eparaksts/callback/../evil",
                                          "http://evil.example/login/eparaksts/callback", ""])
def test_unregistered_redirect_uri_is_refused_at_authorize(sim, redirect_uri):
    url = EparakstsClient(sim.config(redirect_uri=redirect_uri)).authorization_url(state="s")
    page = requests.get(url, allow_redirects=False, timeout=5)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "redirect_uri" in page.text


def test_unknown_client_is_refused_at_authorize(sim):
    url = EparakstsClient(sim.config(client_id="someone-else")).authorization_url(state="s")
    page = requests.get(url, allow_redirects=False, timeout=5)
    assert page.status_code == 400 and "Location" not in page.headers


@pytest.mark.parametrize(("change", "error", "code"), [
    ({"scope": "urn:lvrtc:fpeil:aa:age_18"}, "invalid_scope", "eparaksts_misconfigured"),
    ({"scope": "openid"}, "invalid_scope", "eparaksts_misconfigured"),
    ({"response_type": "token"}, "unsupported_response_type", "eparaksts_misconfigured"),
    ({"prompt": "none"}, "login_required", "eparaksts_login_failed"),
])
def test_authorize_errors_come_back_to_the_callback(sim, change, error, code):
    client = EparakstsClient(sim.config())
    url = urlsplit(client.authorization_url(state="s1"))
    params = {k: v[0] for k, v in parse_qs(url.query).items()} | change
    answer = requests.get(f"{sim.url}{url.path}", params=params, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303)
    callback = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
    assert callback["error"] == error and callback["state"] == "s1"
    assert failure(lambda: finish(client, callback)).code == code


@pytest.mark.parametrize(("error", "code", "retry"), [
    ("access_denied", "eparaksts_cancelled", True),
    ("server_error", "eparaksts_unavailable", True),
    ("temporarily_unavailable", "eparaksts_unavailable", True),
    ("unauthorized_client", "eparaksts_misconfigured", False),
    ("something_new", "eparaksts_login_failed", True),
])
def test_redirect_errors_map_without_calling_eparaksts(error, code, retry):
    client = EparakstsClient(EparakstsConfig(base_url="http://127.0.0.1:9", client_id="c", client_secret="s",
                                             redirect_uri=CALLBACK))
    failed = failure(lambda: client.finish(code="ignored", error=error, error_description="x\ny"))
    assert (failed.code, failed.retry) == (code, retry)


def test_callback_without_code_or_error(sim):
    assert failure(lambda: EparakstsClient(sim.config()).finish(code=None)).code == "eparaksts_no_code"


# --- the token endpoint --------------------------------------------------------------------------------


def test_code_is_single_use(sim):
    client = EparakstsClient(sim.config())
    callback = login(sim, client)
    finish(client, callback)
    failed = failure(lambda: finish(client, callback))
    assert failed.code == "eparaksts_code_rejected" and failed.retry


def test_code_reuse_revokes_the_first_token(sim):
    code = raw_code(sim)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    first = requests.post(sim.url + TOKEN_PATH, data=form, auth=("klients", SECRET), timeout=5)
    assert first.status_code == 200
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert requests.get(sim.url + USERINFO_PATH, headers=bearer, timeout=5).status_code == 200
    second = requests.post(sim.url + TOKEN_PATH, data=form, auth=("klients", SECRET), timeout=5)
    assert (second.status_code, second.json()["error"]) == (400, "invalid_grant")
    assert requests.get(sim.url + USERINFO_PATH, headers=bearer, timeout=5).status_code == 401


def test_wrong_client_secret(sim):
    client = EparakstsClient(sim.config())
    callback = login(sim, client)
    wrong = EparakstsClient(sim.config(client_secret="not-the-secret"))
    failed = failure(lambda: finish(wrong, callback))
    assert failed.code == "eparaksts_client_rejected" and not failed.retry


def test_code_for_another_redirect_uri(sim):
    callback = login(sim, EparakstsClient(sim.config()))
    other = EparakstsClient(sim.config(redirect_uri=OTHER_CALLBACK))
    assert failure(lambda: finish(other, callback)).code == "eparaksts_code_rejected"


def test_expired_code(serve):
    sim = serve(SIM_EPARAKSTS_CODE_TTL="0.2")
    client = EparakstsClient(sim.config())
    callback = login(sim, client)
    time.sleep(0.3)
    assert failure(lambda: finish(client, callback)).code == "eparaksts_code_rejected"


def test_configured_clients(serve):
    sim = serve(SIM_EPARAKSTS_CLIENTS='{"portal": {"secret": "s3", "redirect_uris": ["https://rp.example/cb"]}}')
    client = EparakstsClient(sim.config(client_id="portal", client_secret="s3", redirect_uri="https://rp.example/cb"))
    assert finish(client, login(sim, client)).personal_code == "010180-15097"
    default = EparakstsClient(sim.config())
    assert requests.get(default.authorization_url(state="s"), allow_redirects=False, timeout=5).status_code == 400


@pytest.mark.parametrize(("fault", "code"), [
    ("http_500", "eparaksts_unavailable"),
    ("http_503", "eparaksts_unavailable"),
    ("invalid_grant", "eparaksts_code_rejected"),
    ("invalid_client", "eparaksts_client_rejected"),
    ("malformed_json", "eparaksts_bad_response"),
    ("no_access_token", "eparaksts_bad_response"),
])
def test_token_endpoint_failures(sim, fault, code):
    client = EparakstsClient(sim.config())
    callback = login(sim, client)
    sim.fault("token", fault)
    assert failure(lambda: finish(client, callback)).code == code
    assert finish(client, callback).personal_code == "010180-15097"  # the fault did not use the code up


def test_token_endpoint_timeout(sim):
    client = EparakstsClient(sim.config(http_timeout=0.2))
    callback = login(sim, client)
    sim.fault("token", "delay", delay=0.6)
    started = time.monotonic()
    failed = failure(lambda: finish(client, callback))
    assert failed.code == "eparaksts_timeout" and failed.retry
    assert time.monotonic() - started < 0.55


def test_token_endpoint_protocol(sim):
    form = {"grant_type": "authorization_code", "code": raw_code(sim), "redirect_uri": CALLBACK}
    anonymous = requests.post(sim.url + TOKEN_PATH, data=form, timeout=5)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "invalid_client")
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    as_json = requests.post(sim.url + TOKEN_PATH, json=form, auth=("klients", SECRET), timeout=5)
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    refresh = requests.post(sim.url + TOKEN_PATH, data={"grant_type": "refresh_token", "refresh_token": "x"},
                            auth=("klients", SECRET), timeout=5)
    assert refresh.json()["error"] == "unsupported_grant_type"
    granted = requests.post(sim.url + TOKEN_PATH, data=form, auth=("klients", SECRET), timeout=5)
    assert granted.status_code == 200 and granted.headers["Cache-Control"] == "no-store"
    assert set(granted.json()) == {"access_token", "token_type", "expires_in"}  # no refresh_token, no id_token
    assert granted.json()["token_type"] == "Bearer"


# --- the userinfo endpoint -----------------------------------------------------------------------------


def test_userinfo_answers_the_documented_claims(sim):
    form = {"grant_type": "authorization_code", "code": raw_code(sim), "redirect_uri": CALLBACK}
    token = requests.post(sim.url + TOKEN_PATH, data=form, auth=("klients", SECRET), timeout=5).json()
    claims = requests.get(sim.url + USERINFO_PATH, headers={"Authorization": f"Bearer {token['access_token']}"},
                          timeout=5).json()
    assert set(claims) == DOCUMENTED_CLAIMS
    assert claims["serial_number"] == "PNOLV-010180-15097" and claims["name"] == "JĀNIS BĒRZIŅŠ"
    assert claims["amr"] == ["urn:safelayer:tws:policies:authentication:adaptive:methods:mobileid"]


def test_userinfo_refuses_missing_and_client_credentials_tokens(sim):
    assert requests.get(sim.url + USERINFO_PATH, timeout=5).status_code == 401
    machine = requests.post(sim.url + TOKEN_PATH, data={"grant_type": "client_credentials"},
                            auth=("klients", SECRET), timeout=5).json()["access_token"]
    refused = requests.get(sim.url + USERINFO_PATH, headers={"Authorization": f"Bearer {machine}"}, timeout=5)
    assert refused.status_code == 401 and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


@pytest.mark.parametrize(("fault", "code", "retry"), [
    ("http_500", "eparaksts_unavailable", True),
    ("http_401", "eparaksts_token_rejected", True),
    ("malformed_json", "eparaksts_bad_response", True),
    ("missing_serial_number", "eparaksts_no_personal_code", False),
    ("bad_serial_number", "eparaksts_invalid_personal_code", False),
    ("foreign_serial_number", "eparaksts_not_latvian", False),
    ("low_acr", "eparaksts_insufficient_assurance", False),
])
def test_userinfo_failures(sim, fault, code, retry):
    client = EparakstsClient(sim.config())
    callback = login(sim, client)
    sim.fault("userinfo", fault)
    failed = failure(lambda: finish(client, callback))
    assert (failed.code, failed.retry) == (code, retry)


def test_userinfo_timeout(sim):
    client = EparakstsClient(sim.config(http_timeout=0.2))
    callback = login(sim, client)
    sim.fault("userinfo", "delay", delay=0.6)
    assert failure(lambda: finish(client, callback)).code == "eparaksts_timeout"


def test_unreachable_eparaksts():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EparakstsClient(EparakstsConfig(base_url=f"http://127.0.0.1:{port}", client_id="klients",
                                             client_secret=SECRET, redirect_uri=CALLBACK, http_timeout=2))
    failed = failure(lambda: client.finish(code="abc"))
    assert failed.code == "eparaksts_unreachable" and failed.retry


def test_test_controls_list_and_clear(sim):
    assert requests.post(f"{sim.url}/test/faults/token", json={"fault": "nonsense"}, timeout=5).status_code == 400
    sim.fault("userinfo", "http_500")
    assert requests.get(f"{sim.url}/test/faults", timeout=5).json()["userinfo"][0]["fault"] == "http_500"
    assert requests.delete(f"{sim.url}/test/faults", timeout=5).status_code == 204
    assert requests.get(f"{sim.url}/test/faults", timeout=5).json() == {"token": [], "userinfo": []}
    persons = requests.get(f"{sim.url}/test/persons", timeout=5).json()
    assert {"PNOLV-010180-15097", "PNOLV-320000-00008"} <= {p["serial_number"] for p in persons}


# --- checking the claims themselves --------------------------------------------------------------------

CLAIMS = {"sub": "ddf12735f35675ecb652e6e1a80e41f1", "domain": "citizen",
          "acr": "urn:safelayer:tws:policies:authentication:level:high",
          "amr": ["urn:eparaksts:tws:policies:authentication:adaptive:methods:sc_plugin"],
          "given_name": "ANDRIS", "family_name": "PARAUDZIŠ", "name": "ANDRIS PARAUDZIŠ",
          "serial_number": "PNOLV-010180-15097", "eips": 'VAS "Latvijas Valsts radio un televīzijas centrs"'}


def test_documentation_example_claims():
    identity = identity_from_userinfo(CLAIMS)
    assert (identity.personal_code, identity.given_name, identity.amr) == ("010180-15097", "ANDRIS", ("eid_card",))


@pytest.mark.parametrize(("change", "amr"), [
    ({"acr": "urn:eparaksts:authentication:flow:mobileid",
      "amr": ["urn:safelayer:tws:policies:authentication:adaptive:methods:mobileid"]}, "eparaksts_mobile"),
    ({"amr": ["urn:example:methods:something_new"]}, "eparaksts"),
    ({"amr": None}, "eparaksts"),
    ({"serial_number": "pnolv-01018015097"}, "eid_card"),
])
def test_accepted_claims(change, amr):
    identity = identity_from_userinfo(CLAIMS | change)
    assert identity.amr == (amr,) and identity.personal_code == "010180-15097"


@pytest.mark.parametrize(("change", "code"), [
    ({"acr": None}, "eparaksts_insufficient_assurance"),
    ({"acr": "urn:safelayer:tws:policies:authentication:level:medium"}, "eparaksts_insufficient_assurance"),
    ({"serial_number": "PNOLV-010180"}, "eparaksts_invalid_personal_code"),
    ({"serial_number": "PNOLV-310000-00008"}, "eparaksts_invalid_personal_code"),
    ({"serial_number": "PNOLT-38001085718"}, "eparaksts_not_latvian"),
    ({"serial_number": 1018015097}, "eparaksts_no_personal_code"),
    ({"given_name": "", "family_name": ""}, "eparaksts_bad_response"),
    ({"given_name": ["ANDRIS"]}, "eparaksts_bad_response"),
])
def test_refused_claims(change, code):
    assert failure(lambda: identity_from_userinfo(CLAIMS | change)).code == code
