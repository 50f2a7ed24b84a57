"""The response-hardening layer shared by identity and the gateway (klients_common.web), probed over HTTP on
the running processes: request bodies over the limit refused before they are read, security headers and
cache rules, 303 after a POST, Retry-After only where it means something, and the probes that say how the
system is doing served on an internal port only."""

from __future__ import annotations

import os
import select
import socket
import time

import requests

from tests.support.helpers import bearer, csrf_of
from tests.support.oidc_helpers import ISSUER

GATEWAY = "http://" + os.environ["GATEWAY_BIND"]
FIFTY_MB = 50 * 1024 * 1024


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    return host, int(port)


def _read_response(sock: socket.socket, timeout: float) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (status, headers with lower-case names, body) within ``timeout``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)  # a timeout here: the server is still waiting for the body
        assert piece, f"the connection closed before an answer: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        piece = sock.recv(65536)
        if not piece:
            break
        body += piece
    return int(status_line.split()[1]), headers, body


def _claim_a_large_body(url: str, path: str, content_type: str) -> tuple[int, dict[str, str], bytes, float]:
    """Say a 50 MB body follows, send none of it, and return the answer and how long it took."""
    host, port = _address(url)
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {FIFTY_MB}\r\n\r\n".encode())
        status, headers, body = _read_response(sock, timeout=10)
    return status, headers, body, time.monotonic() - started


def _stream_without_end(url: str, path: str, *, most: int) -> tuple[int, dict[str, str], bytes, int]:
    """Send a chunked body (no length) until the server answers or ``most`` bytes went; never end it."""
    host, port = _address(url)
    chunk = b"x" * 65536
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        while sent < most and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        status, headers, body = _read_response(sock, timeout=10)  # a server reading to the end never answers
    return status, headers, body, sent


def test_a_body_over_the_limit_is_refused_before_it_is_read(stack):
    status, headers, body, took = _claim_a_large_body(GATEWAY, "/api/v1/payment-callbacks", "application/json")
    assert status == 413 and headers["content-type"] == "application/problem+json", body
    assert took < 5
    status, headers, body, sent = _stream_without_end(GATEWAY, "/api/v1/payment-callbacks", most=8 * 1024 * 1024)
    assert status == 413 and headers["content-type"] == "application/problem+json", body
    assert sent < 8 * 1024 * 1024  # answered while the body was still coming
    # identity: a page, not an error document
    status, headers, body, took = _claim_a_large_body(ISSUER, "/login/email", "application/x-www-form-urlencoded")
    assert status == 413 and headers["content-type"].startswith("text/html")
    assert b'id="error-message"' in body and took < 5
    # what fits still works
    small = requests.post(f"{GATEWAY}/api/v1/payment-callbacks", data="{}", timeout=10,
                          headers={"Content-Type": "application/json", "Klients-Signature": "nope"})
    assert small.status_code != 413


def test_identity_pages_cannot_be_framed_or_cached_and_run_no_inline_code(stack):
    browser = requests.Session()
    for path in ("/login", "/login/smart-id", "/login/email"):
        page = browser.get(f"{ISSUER}{path}", timeout=10)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), path
        csp = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
                   if part.strip())
        assert csp["default-src"] == "'self'" and csp["frame-ancestors"] == "'none'", csp
        assert "'self'" in csp["form-action"] and "*" not in csp["form-action"]
        assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
        assert "<script>" not in page.text and "<style>" not in page.text and 'style="' not in page.text
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in page.headers["Cache-Control"]
    for public in ("/.well-known/openid-configuration", "/jwks.json"):
        answer = requests.get(f"{ISSUER}{public}", timeout=10)
        assert "max-age=" in answer.headers["Cache-Control"] and "no-store" not in answer.headers["Cache-Control"]
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_login_form_post_answered_with_a_redirect_is_303(stack):
    browser = requests.Session()
    page = browser.get(f"{ISSUER}/login/smart-id", timeout=10)
    started = browser.post(f"{ISSUER}/login/smart-id", data={"csrf": csrf_of(page), "personal_code": "040404-10003"},
                           allow_redirects=False, timeout=10)
    assert started.status_code == 303 and started.headers["Location"].endswith("/login/smart-id/wait")


def test_gateway_answers_carry_security_headers_and_retry_after_only_on_429_and_503(stack, mint):
    token = mint({"LVG-100001": "owner"})
    answers = [requests.get(f"{GATEWAY}/api/v1/me", headers=bearer(token), timeout=10),
               requests.get(f"{GATEWAY}/api/v1/contracts/LVG-100001/consumption", headers=bearer(token), timeout=10),
               requests.get(f"{GATEWAY}/api/v1/me", timeout=10)]
    assert [a.status_code for a in answers] == [200, 422, 401]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert "no-store" in answer.headers["Cache-Control"]
        assert "Retry-After" not in answer.headers, answer.status_code


def test_metrics_and_readiness_are_served_on_the_internal_port_only(stack):
    internal = "http://" + os.environ["GATEWAY_INTERNAL_BIND"]
    for path in ("/metrics", "/readyz"):
        assert requests.get(f"{GATEWAY}{path}", timeout=10).status_code == 404, path
    assert requests.get(f"{internal}/readyz", timeout=10).json()["status"] == "ready"
    assert "klients_gateway_requests_total" in requests.get(f"{internal}/metrics", timeout=10).text
    assert requests.get(f"{GATEWAY}/healthz", timeout=10).status_code == 200  # liveness stays public
    assert requests.get(f"{internal}/api/v1/me", timeout=10).status_code == 404  # the API is not served there
