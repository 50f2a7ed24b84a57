"""The authorisation matrix, for every operation the OpenAPI description lists (so a new endpoint is covered
the day it is declared): no token, an expired token, a token for another audience, no grant on the contract
(404, never 403), a grant lacking the right (403 naming it), a mandate that ended, a low-assurance session
on changes (step-up), client-supplied identity headers ignored, body fields trying to set role or contract
refused.

Declared = enforced: the matrix runs against a gateway with no bus to reach, so every refusal it sees is the
``@operation`` declaration's own doing (a view declared with a right its route does not enforce would pass
the request on and answer 503), and a declaration that could not be enforced is refused at import."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from klients_common.grants import ALL_RIGHTS, Right, Role
from klients_common.grants import Grant as TokenGrant
from klients_gateway import create_app
from klients_gateway.openapi import OPERATIONS, Operation, operation
from klients_gateway.settings import Settings
from tests.support.stack import mint_token

LOW = "http://eidas.europa.eu/LoA/low"
HIGH = "http://eidas.europa.eu/LoA/high"
CONTRACT = "LVG-100001"
SAMPLE_BODY = {"name": "A", "email": "a@example.lv", "level": "bills", "value": 1, "amount": "1.00",
               "phone": "+37120000000"}


def _operations() -> list[tuple[str, str, str, Operation]]:
    app = create_app()
    found = []
    for rule in app.url_map.iter_rules():
        spec = OPERATIONS.get(rule.endpoint)
        if spec is None or spec.public:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: CONTRACT if m.group(1) == "contract" else "x1", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((f"{method} {rule.rule}", method, path, spec))
    app.extensions["klients_rpc"].close()
    return found


OPS = _operations()
CONTRACT_OPS = [op for op in OPS if "/contracts/" + CONTRACT in op[2]]
ids = [op[0] for op in OPS]


@pytest.fixture(scope="module")
def bare_gateway(stack) -> Iterator[Any]:
    """The gateway with no bus to reach (nothing listens on port 1): a request its declaration admits
    answers 503, so a refusal can only come from the declaration."""
    settings = dataclasses.replace(Settings.from_env(), amqp_uri="amqp://guest:guest@127.0.0.1:1/", rpc_timeout=0.3)
    app = create_app({"SETTINGS": settings})
    yield app.test_client()
    app.extensions["klients_rpc"].close()


def token(grants: list[TokenGrant], *, acr: str = HIGH, **kwargs: Any) -> str:
    return mint_token({g.contract: g for g in grants}, subject="p-authz", acr=acr, auth_time=int(time.time()),
                      **kwargs)


def send(gateway, method: str, path: str, spec: Operation, bearer: str | None, *, body: dict | None = None,
         headers: dict | None = None):
    sent = {"Idempotency-Key": "authz-key-1", **(headers or {})}
    if bearer:
        sent["Authorization"] = f"Bearer {bearer}"
    payload = body if body is not None else ({k: v for k, v in SAMPLE_BODY.items()
                                              if k in spec.body.get("properties", {})} if spec.body else None)
    return gateway.open(path, method=method, headers=sent, json=payload, query_string={
        "period_from": "2026-01-01", "period_to": "2026-02-01"})


def owner(contract: str = CONTRACT, **kwargs) -> str:
    return token([TokenGrant(contract, Role.OWNER, ALL_RIGHTS)], **kwargs)


@pytest.mark.parametrize(("label", "method", "path", "spec"), OPS, ids=ids)
def test_no_expired_or_foreign_token_is_401(bare_gateway, label, method, path, spec):
    for bearer in (None, "not-a-jwt", owner(now=time.time() - 3600),  # expired an hour ago
                   owner(audience="another-api")):
        answer = send(bare_gateway, method, path, spec, bearer)
        assert answer.status_code == 401, (label, bearer and bearer[:10])
        assert answer.mimetype == "application/problem+json" and answer.headers["WWW-Authenticate"].startswith(
            "Bearer")


@pytest.mark.parametrize(("label", "method", "path", "spec"), CONTRACT_OPS, ids=[op[0] for op in CONTRACT_OPS])
def test_contract_rights(bare_gateway, label, method, path, spec):
    # No grant on this contract (one on another): 404, and identity headers a client adds change nothing.
    other = owner("LVG-100002")
    answer = send(bare_gateway, method, path, spec, other, headers={
        "X-Person-Id": "p-authz", "X-User": CONTRACT, "X-Forwarded-User": "owner", "X-Contract": CONTRACT,
        "X-Roles": "owner"})
    assert answer.status_code == 404, label
    # A mandate that ended yesterday: 404 as well.
    ended = token([TokenGrant(CONTRACT, Role.DELEGATE, ALL_RIGHTS, int(time.time()) - 86400)])
    assert send(bare_gateway, method, path, spec, ended).status_code == 404, label
    if spec.right:
        # Every right but the one needed: 403 naming it.
        lacking = token([TokenGrant(CONTRACT, Role.SUBUSER, ALL_RIGHTS - {Right(spec.right)})])
        refused = send(bare_gateway, method, path, spec, lacking)
        assert refused.status_code == 403 and refused.get_json()["missing_right"] == spec.right, label
    if spec.step_up:
        weak = send(bare_gateway, method, path, spec, owner(acr=LOW))
        assert weak.status_code == 403 and 'error="insufficient_user_authentication"' in \
            weak.headers["WWW-Authenticate"], label


@pytest.mark.parametrize(("label", "method", "path", "spec"), [op for op in OPS if op[3].body],
                         ids=[op[0] for op in OPS if op[3].body])
def test_body_fields_setting_role_contract_or_person_are_refused(bare_gateway, label, method, path, spec):
    base = {k: v for k, v in SAMPLE_BODY.items() if k in spec.body.get("properties", {})}
    for extra in ({"contract": "LVG-100002"}, {"role": "owner"}, {"person_id": "someone-else"},
                  {"rights": ["users:manage"]}):
        answer = send(bare_gateway, method, path, spec, owner(), body={**base, **extra})
        assert answer.status_code == 422, (label, extra)
        fields = {e["field"] for e in answer.get_json()["errors"]}
        assert set(extra) <= fields, (label, extra, fields)


@pytest.mark.parametrize(("label", "method", "path", "spec"), OPS, ids=ids)
def test_a_caller_the_declaration_admits_gets_through_to_the_services(bare_gateway, label, method, path, spec):
    # The owner with every right and a strong login passes the checks and reaches for the bus (503 here),
    # or is stopped by the body's or query's validation: never 401, 403 or 404.
    answer = send(bare_gateway, method, path, spec, owner())
    assert answer.status_code in (503, 422), (label, answer.status_code, answer.get_json())


def _view(contract: str) -> None:
    """A view on a contract."""


def _own_view() -> None:
    """A view on the caller."""


@pytest.mark.parametrize(("view", "declared", "refusal"), [
    (_own_view, {"right": "bills:read"}, "the path needs <contract>"),
    (_view, {}, "declare the right needed on the contract"),
    (_view, {"right": "bills:read", "public": True}, "a public operation checks no right"),
    (_own_view, {"step_up": True, "public": True}, "a public operation checks no right"),
    (_view, {"right": "bills:steal"}, "'bills:steal' is not a valid Right"),
], ids=["right-without-contract", "contract-without-right", "public-with-right", "public-with-step-up",
        "unknown-right"])
def test_a_declaration_that_could_not_be_enforced_is_refused_at_import(view, declared, refusal):
    with pytest.raises((TypeError, ValueError), match=refusal):
        operation(summary="x", tag="x", **declared)(view)
    assert f"api.{view.__name__}" not in OPERATIONS
