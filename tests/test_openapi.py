"""The OpenAPI 3.1 description is complete (every route of /api/v1 is in it), is built from the schemas the
gateway validates with (not a copy), is valid for a generic OpenAPI tool, and has a readable page."""

from __future__ import annotations

import re

import schemathesis

from klients_gateway import schemas
from klients_gateway.openapi import OPERATIONS


def test_every_api_route_is_described_and_nothing_else(gateway):
    spec = gateway.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    described = {(path, method.upper()) for path, methods in spec["paths"].items() for method in methods}
    app = gateway.application
    rules = [r for r in app.url_map.iter_rules()
             if r.rule.startswith("/api/v1/") and r.endpoint != "api.reference_page"]
    served = {(re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule), method)
              for rule in rules for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert described == served
    assert set(OPERATIONS) == {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("api.")} - {
        "api.reference_page"}


def test_the_description_carries_the_schemas_requests_are_validated_with(gateway):
    spec = gateway.get("/api/v1/openapi.json").get_json()
    users = spec["paths"]["/api/v1/contracts/{contract}/users"]["post"]
    assert users["requestBody"]["content"]["application/json"]["schema"] == schemas.NEW_USER
    assert users["security"] == [{"bearer": []}] and "403" in users["responses"]
    payments = spec["paths"]["/api/v1/contracts/{contract}/payments"]["post"]
    key = next(p for p in payments["parameters"] if p["name"] == "Idempotency-Key")
    assert key["in"] == "header" and key["required"] is True
    assert spec["paths"]["/api/v1/openapi.json"]["get"]["security"] == []


def test_a_generic_openapi_tool_accepts_the_description(gateway):
    loaded = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", gateway.application)
    operations = {result.ok().label for result in loaded.get_all_operations()}  # each one parses
    spec = gateway.get("/api/v1/openapi.json").get_json()
    described = {f"{method.upper()} {path}" for path, methods in spec["paths"].items() for method in methods}
    assert described - operations == {"GET /api/v1/openapi.json"}  # schemathesis leaves the description itself out


def test_the_reference_page_lists_every_operation(gateway):
    page = gateway.get("/api/v1/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    for endpoint in OPERATIONS:
        assert f'id="{endpoint.removeprefix("api.")}"' in text
    assert "<script" not in text
