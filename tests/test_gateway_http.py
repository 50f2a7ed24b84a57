"""The gateway's HTTP behaviour: CORS for the portal's origins only, request ids, Prometheus metrics,
problem+json for unknown routes and methods."""

from __future__ import annotations

import os

from tests.support.helpers import bearer

INTERNAL = "http://" + os.environ["GATEWAY_INTERNAL_BIND"]


def test_cors_only_for_configured_portal_origins(gateway, mint):
    token = mint({"LVG-100001": "owner"})
    allowed = gateway.get("/api/v1/me", headers={"Origin": "http://127.0.0.1:3000", "Authorization": f"Bearer {token}"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:3000"
    assert "Origin" in allowed.headers["Vary"]
    foreign = gateway.get("/api/v1/me", headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"})
    assert foreign.status_code == 200 and "Access-Control-Allow-Origin" not in foreign.headers
    preflight = gateway.options("/api/v1/contracts/LVG-100001/payments", headers={
        "Origin": "http://127.0.0.1:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Idempotency-Key"})
    assert preflight.status_code == 200
    assert "Idempotency-Key" in preflight.headers["Access-Control-Allow-Headers"]
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]


def test_request_id_is_echoed_or_made(gateway):
    given = gateway.get("/healthz", headers={"X-Request-Id": "req-12345678"})
    assert given.headers["X-Request-Id"] == "req-12345678"
    made = gateway.get("/healthz", headers={"X-Request-Id": "bad"})
    assert len(made.headers["X-Request-Id"]) == 36


def test_metrics_count_requests_and_rpc_latency(gateway, mint):
    gateway.get("/api/v1/contracts/LVG-100001", headers={"Authorization": f"Bearer {mint({'LVG-100001': 'owner'})}"})
    text = gateway.get("/metrics", base_url=INTERNAL).get_data(as_text=True)  # the internal port only
    assert 'klients_gateway_requests_total{method="GET",route="/api/v1/contracts/<contract>",status="200"}' in text
    assert 'klients_gateway_rpc_seconds_count{method="get_contract",service="billing"}' in text


def test_unknown_routes_and_methods_are_problem_json(gateway):
    missing = gateway.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = gateway.delete("/api/v1/me")
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"


def test_access_logs_are_json_with_the_request_id_and_nothing_secret(gateway, mint, caplog):
    import json
    import logging

    from klients_common.jsonlog import JsonFormatter

    token = mint({"LVG-100001": "owner"}, subject="p-logs")
    with caplog.at_level(logging.INFO):
        gateway.get("/api/v1/contracts/LVG-100001/balance", headers={**bearer(token), "X-Request-Id": "req-logs-0001"})
        gateway.get("/api/v1/notifications/unsubscribe?email=secret.person@example.lv&sig=abc",
                    headers={"X-Request-Id": "bad id with spaces {}"})
    lines = [JsonFormatter().format(r) for r in caplog.records]
    access = [json.loads(line) for line in lines if '"logger": "klients_gateway.access"' in line]
    first = next(a for a in access if a["request_id"] == "req-logs-0001")
    assert (first["route"], first["status"], first["person"]) == ("/api/v1/contracts/<contract>/balance", 200, "p-logs")
    second = access[-1]
    assert second["route"] == "/api/v1/notifications/unsubscribe" and " " not in second["request_id"]
    everything = "\n".join(lines)
    assert token not in everything and token.split(".")[2] not in everything
    assert "secret.person@example.lv" not in everything
