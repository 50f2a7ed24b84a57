"""Revocation that bites now: a grant revoked in identity stops an access token issued before it at billing
and metering within a second, while the token's other grants keep working."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from klients_common.errors import NotFound
from tests.support.access_helpers import plant_person
from tests.support.stack import identity_session, publish_event, random_personal_code, wait_until


def announce_revocation(person: str, contract: str) -> None:
    """Publish identity's grant_revoked as its outbox relay does."""
    publish_event("grant_revoked", {
        "event_id": str(uuid.uuid4()), "actor": "operator-1", "subject": person, "contract": contract,
        "role": "subuser", "revoked_at": datetime.now(UTC).isoformat(), "notify": False, "to": None,
        "lang": "lv", "name": "", "reason": "revoked"})


def refused(rpc, service: str, method: str, contract: str, token: str) -> bool:
    try:
        rpc.call(service, method, contract, context={"authorization": f"Bearer {token}"}, timeout=2)
    except NotFound:
        return True
    return False


def test_a_revoked_grant_is_refused_within_a_second_by_every_service(rpc, mint, gateway):
    person = f"p-{uuid.uuid4().hex[:8]}"
    token = mint({"LVG-100001": ("subuser", "bills_readings"), "LVG-100002": "owner"}, subject=person)
    assert not refused(rpc, "billing", "get_contract", "LVG-100001", token)
    assert not refused(rpc, "metering", "list_meters", "LVG-100001", token)
    time.sleep(1)  # the revocation comes after the token was issued
    announce_revocation(person, "LVG-100001")
    started = time.monotonic()
    wait_until("billing to refuse", lambda: refused(rpc, "billing", "get_contract", "LVG-100001", token), timeout=5)
    wait_until("metering to refuse", lambda: refused(rpc, "metering", "list_meters", "LVG-100001", token), timeout=5)
    assert time.monotonic() - started < 1.5
    for path in ("/api/v1/contracts/LVG-100001", "/api/v1/contracts/LVG-100001/overview"):
        response = gateway.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404, path
    assert not refused(rpc, "billing", "get_contract", "LVG-100002", token)  # the other grant stands
    # Lists honour it too: the contract list and /me leave the revoked contract out.
    listed = rpc.call("billing", "list_contracts", context={"authorization": f"Bearer {token}"})
    assert [c["number"] for c in listed] == ["LVG-100002"]
    me = gateway.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [g["contract"] for g in me["grants"]] == ["LVG-100002"]


def test_a_token_issued_after_the_revocation_works_again_when_the_grant_is_back(rpc, mint):
    person = f"p-{uuid.uuid4().hex[:8]}"
    announce_revocation(person, "LVG-100001")
    time.sleep(2)  # the grant comes back a moment later; the next token is issued after the revocation
    token = mint({"LVG-100001": "owner"}, subject=person)
    assert not refused(rpc, "billing", "get_contract", "LVG-100001", token)


@pytest.mark.parametrize("payload", [{"subject": "x"}, {"subject": "x", "contract": "C", "revoked_at": "yesterday"}])
def test_a_malformed_revocation_is_ignored_and_the_service_keeps_answering(rpc, mint, payload):
    publish_event("grant_revoked", payload)
    token = mint({"LVG-100001": "owner"})
    time.sleep(0.5)
    assert not refused(rpc, "billing", "get_contract", "LVG-100001", token)


def test_the_register_taking_a_contract_away_reaches_every_service(rpc, mint):
    """At a login, identity drops owner grants the client register no longer backs; the revocation (an event
    without a notice to send) goes out like any other and billing refuses the older token."""
    from klients_identity.access import accounts
    from klients_identity.models import Grant, Person

    person, grant = plant_person("LVG-100003", personal_code=random_personal_code())
    token = mint({"LVG-100003": "owner"}, subject=person)
    assert not refused(rpc, "billing", "get_contract", "LVG-100003", token)
    time.sleep(1)  # the revocation comes after the token was issued
    with identity_session() as session:
        accounts.sync_owner_grants(session, session.get(Person, person), held=[])
    with identity_session() as session:
        assert session.get(Grant, grant).status == "revoked"
    wait_until("billing to refuse", lambda: refused(rpc, "billing", "get_contract", "LVG-100003", token), timeout=5)


def test_a_restarted_instance_remembers_the_revocations_in_force(stack, rpc, mint):
    """The grant is revoked while billing is down (it hears no announcement); the new instance loads what
    identity says is still in force before it serves, and refuses the older token."""
    from klients_identity.models import Grant

    person, grant = plant_person("LVG-100002", personal_code=random_personal_code())
    token = mint({"LVG-100002": "owner"}, subject=person)
    assert not refused(rpc, "billing", "get_contract", "LVG-100002", token)
    stack.stop("billing")
    time.sleep(1)  # the revocation comes after the token was issued
    with identity_session() as session:
        row = session.get(Grant, grant)
        row.status, row.ended_at = "revoked", datetime.now(UTC)
    stack.start_service("billing", rpc)
    assert refused(rpc, "billing", "get_contract", "LVG-100002", token)


def test_only_billing_and_metering_may_ask_for_the_revocations_in_force(rpc):
    from klients_common.errors import Forbidden

    with pytest.raises(Forbidden):
        rpc.call("identity", "revocations_in_force")  # the gateway's connection
