"""The gateway's HTTP behaviour: CORS for the portal's origins only, request ids, Prometheus metrics,
problem+json for unknown routes and methods."""

from __future__ import annotations


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
    text = gateway.get("/metrics").get_data(as_text=True)
    assert 'klients_gateway_requests_total{method="GET",route="/api/v1/contracts/<contract>",status="200"}' in text
    assert 'klients_gateway_rpc_seconds_count{method="get_contract",service="billing"}' in text


def test_unknown_routes_and_methods_are_problem_json(gateway):
    missing = gateway.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    wrong = gateway.delete("/api/v1/me")
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
