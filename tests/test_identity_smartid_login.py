"""Identity's login pages against the Smart-ID simulator: every way a Smart-ID login can end badly gives a
clear page and no session; the device-link flow; identity's events reach the bus."""

from __future__ import annotations

import json
import os
import re
import uuid

import pytest
import requests
from kombu import Connection, Exchange, Queue

from tests.support.oidc_helpers import authorize, finish, pkce, redirect_params, start_smartid
from tests.support.stack import admin_uri, wait_until

pytestmark = pytest.mark.usefixtures("stack")
SIM = f"http://{os.environ.get('SIM_SMARTID_BIND', '127.0.0.1:18091')}"


def signed_in(browser: requests.Session) -> bool:
    response = authorize(browser, prompt="none", code_challenge=pkce()[1], code_challenge_method="S256")
    return "code" in redirect_params(response)


@pytest.mark.parametrize(("control", "code", "words"), [
    ({"endResult": "USER_REFUSED"}, "040404-10003", "atteic"),
    ({"endResult": "TIMEOUT"}, "040404-10003", "laik"),
    ({"endResult": "DOCUMENT_UNUSABLE"}, "040404-10003", ""),
    ({"endResult": "WRONG_VC"}, "040404-10003", ""),
    ({"httpStatus": 401}, "040404-10003", ""),
    ({"httpStatus": 403}, "040404-10003", ""),
    ({"httpStatus": 404}, "040404-10003", ""),
    ({"httpStatus": 480}, "040404-10003", ""),
    ({"statusHttpStatus": 580}, "040404-10003", ""),  # maintenance at start falls back to v2: see below
    ({"fault": "tampered_signature"}, "040404-10003", ""),
    ({"fault": "untrusted_certificate"}, "040404-10003", ""),
    ({"fault": "expired_certificate"}, "040404-10003", ""),
    ({"fault": "level_too_low"}, "040404-10003", ""),
])
def test_every_bad_end_gives_a_clear_page_and_no_session(control, code, words):
    requests.post(f"{SIM}/test/next-session", json=control, timeout=10).raise_for_status()
    browser = requests.Session()
    ended = finish(browser, start_smartid(browser, personal_code=code))
    assert ended.status_code == 401
    message = re.search(r'id="error-message">([^<]+)<', ended.text).group(1).strip()
    assert len(message) > 20 and words in message.lower()
    assert not signed_in(browser)


def test_smart_id_in_maintenance_falls_back_to_the_v2_api_and_the_login_completes():
    requests.post(f"{SIM}/test/next-session", json={"httpStatus": 580}, timeout=10).raise_for_status()
    browser = requests.Session()
    first = start_smartid(browser, personal_code="040404-10003")
    assert re.search(r'id="verification-code"[^>]*>\d{4}<', first.text)  # the v2 session's code is shown
    ended = finish(browser, first)
    assert 'id="signed-in"' in ended.text and signed_in(browser)


def test_device_link_flow_shows_the_link_and_completes():
    browser = requests.Session()
    first = start_smartid(browser, flow="device_link")
    link = re.search(r'id="device-link" href="([^"]+)"', first.text).group(1)
    assert "authCode=" in link.replace("&amp;", "&")
    ended = finish(browser, first)
    assert 'id="signed-in"' in ended.text and signed_in(browser)


def test_identity_events_reach_the_bus():
    queue = Queue(f"test-identity-events-{uuid.uuid4()}", Exchange("identity.events", type="topic", durable=True),
                  routing_key="login", auto_delete=True)
    received = []
    with Connection(admin_uri()) as conn:  # an observer with every permission
        with conn.Consumer(queue, callbacks=[lambda body, message: (received.append(body), message.ack())],
                           accept=["json"]):
            browser = requests.Session()
            finish(browser, start_smartid(browser, personal_code="040404-10003"))

            def drained() -> bool:
                try:
                    conn.drain_events(timeout=0.5)
                except TimeoutError:
                    pass
                return any(e.get("method") == "smart_id" for e in received)

            wait_until("a login event", drained, timeout=15)
    event = next(e for e in received if e.get("method") == "smart_id")
    assert event["acr"] == "http://eidas.europa.eu/LoA/substantial" and event["event_id"]
    assert "040404" not in json.dumps(event)  # no personal codes on the bus
