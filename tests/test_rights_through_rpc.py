"""The walking skeleton: gateway → nameko RPC over real RabbitMQ → a service that enforces the right."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from klients_common.errors import Forbidden, NotFound, Unauthenticated
from tests.support.helpers import bearer
from tests.support.stack import Stack, admin_uri, wait_until


def test_owner_reads_own_contract_through_the_gateway(gateway, mint):
    response = gateway.get("/api/v1/contracts/LVG-100001", headers=bearer(mint({"LVG-100001": "owner"})))
    assert response.status_code == 200
    body = response.get_json()
    assert body["number"] == "LVG-100001"
    assert body["holder_name"] == "OK TESTNUMBER"
    assert body["role"] == "owner"
    assert "holder_personal_code" not in body


def test_contract_list_holds_only_the_callers_contracts(gateway, mint):
    token = mint({"LVG-100002": "owner", "LVG-100003": ("subuser", "bills")})
    response = gateway.get("/api/v1/contracts", headers=bearer(token))
    assert response.status_code == 200
    assert [(c["number"], c["role"]) for c in response.get_json()["items"]] == [
        ("LVG-100002", "owner"), ("LVG-100003", "subuser")]


def test_me_lists_grants_from_the_token(gateway, mint):
    response = gateway.get("/api/v1/me", headers=bearer(mint({"LVG-100001": ("subuser", "bills")}, subject="p-42")))
    assert response.status_code == 200
    me = response.get_json()
    assert me["id"] == "p-42"
    assert me["grants"] == [{"contract": "LVG-100001", "role": "subuser",
                             "rights": ["bills:pay", "bills:read"], "until": None}]


def test_subuser_without_the_right_gets_403_from_the_gateway(gateway, mint):
    token = mint({"LVG-100001": ("subuser", "bills")})
    response = gateway.get("/api/v1/contracts/LVG-100001/meters", headers=bearer(token))
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["missing_right"] == "meters:read"


def test_contract_without_a_grant_is_not_found(gateway, mint):
    response = gateway.get("/api/v1/contracts/LVG-100002", headers=bearer(mint({"LVG-100001": "owner"})))
    assert response.status_code == 404
    assert response.get_json()["title"] == "Not found"


def test_subuser_with_readings_level_sees_meters(gateway, mint):
    token = mint({"LVG-100001": ("subuser", "bills_readings")})
    response = gateway.get("/api/v1/contracts/LVG-100001/meters", headers=bearer(token))
    assert response.status_code == 200
    assert [m["serial_number"] for m in response.get_json()["items"]] == ["G4-2019-000101"]


# The service enforces rights itself: the same calls made straight over RPC, bypassing the gateway.

def test_service_refuses_a_token_lacking_the_right_when_called_directly(rpc, mint):
    token = mint({"LVG-100001": ("subuser", "bills")})
    with pytest.raises(Forbidden) as refused:
        rpc.call("metering", "list_meters", "LVG-100001", context={"authorization": f"Bearer {token}"})
    assert refused.value.extra == {"missing_right": "meters:read"}


def test_service_hides_contracts_without_a_grant_when_called_directly(rpc, mint):
    token = mint({"LVG-100001": "owner"})
    with pytest.raises(NotFound):
        rpc.call("billing", "get_contract", "LVG-100004", context={"authorization": f"Bearer {token}"})


@pytest.mark.parametrize("context", [
    {},
    {"authorization": "Bearer not-a-jwt"},
    {"authorization": "Bearer eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJzdWIiOiJ4In0."},
    {"user_id": "person-1", "auth_token": "forged"},
], ids=["no-token", "garbage", "alg-none", "forged-identity-headers"])
def test_service_refuses_messages_without_a_valid_token(rpc, context):
    with pytest.raises(Unauthenticated):
        rpc.call("billing", "get_contract", "LVG-100001", context=context)


def test_context_reaches_downstream_rpc_and_events(stack, rpc, mint, tmp_path):
    os.environ["PROBE_OUTBOX"] = str(tmp_path)
    probe = Stack()
    probe.start("probe", sys.executable, "-m", "tests.support.probe_service", env={"AMQP_URI": admin_uri()})
    try:
        wait_until("probe", lambda: rpc.call("probe", "ping", timeout=1) == "pong")
        owner = mint({"LVG-100001": "owner"}, subject="p-owner")
        stranger = mint({"LVG-100002": "owner"}, subject="p-stranger")
        relayed = rpc.call("probe", "relay", "LVG-100001", "owner", context={"authorization": f"Bearer {owner}"})
        assert relayed["number"] == "LVG-100001"
        with pytest.raises(NotFound):
            rpc.call("probe", "relay", "LVG-100001", "stranger", context={"authorization": f"Bearer {stranger}"})
        outbox = Path(tmp_path, "owner")
        wait_until("event leg", outbox.exists, timeout=10)
        assert json.loads(outbox.read_text()) == {"ok": "LVG-100001", "subject": "p-owner"}
    finally:
        probe.stop_all()


def test_gateway_answers_503_when_a_service_does_not_answer(stack, gateway, mint, rpc):
    from klients_gateway import create_app

    app = create_app()
    impatient = create_app({"SETTINGS": replace(app.config["SETTINGS"], rpc_timeout=1.0)})
    app.extensions["klients_rpc"].close()
    stack.stop("metering")
    try:
        response = impatient.test_client().get(
            "/api/v1/contracts/LVG-100001/meters", headers=bearer(mint({"LVG-100001": "owner"})))
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert gateway.get("/readyz", base_url="http://" + os.environ["GATEWAY_INTERNAL_BIND"]).status_code == 503
    finally:
        impatient.extensions["klients_rpc"].close()
        stack.start_service("metering", rpc)
    assert gateway.get("/readyz", base_url="http://" + os.environ["GATEWAY_INTERNAL_BIND"]).get_json() == {
        "status": "ready", "services": {"billing": True, "metering": True, "notifications": True, "identity": True}}
