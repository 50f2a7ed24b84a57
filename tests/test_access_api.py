"""Access management through the gateway and identity's RPC (docs/access.md, "The rules"; docs/api.md): inviting
additional users, listing them with status, changing the level, resending and cancelling invitations, revoking (which
bites at once at every service), the holder's online mandate, and every refusal leaving nothing changed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from sqlalchemy import func, select

from klients_common.errors import NotFound
from klients_common.grants import ALL_RIGHTS, Role
from klients_common.grants import Grant as TokenGrant
from klients_common.riga import end_of_day_epoch, riga_today
from klients_identity.access.grants import end_ended_grants
from klients_identity.models import Grant, Invitation
from tests.support.access_helpers import invitation_link, now, plant_person, unique_email
from tests.support.helpers import bearer, mails
from tests.support.stack import identity_session, random_personal_code, wait_until

LOW = "http://eidas.europa.eu/LoA/low"
SUBSTANTIAL = "http://eidas.europa.eu/LoA/substantial"


def grants_on(contract: str) -> int:
    with identity_session() as session:
        return session.scalar(select(func.count()).select_from(Grant).where(Grant.contract == contract))


@pytest.fixture
def holder(new_contract, mint):
    """A contract, its holder as a person in identity (with an e-mail), and a fresh strong token."""
    contract = new_contract().number
    email = unique_email("holder")
    person, _ = plant_person(contract, email=email, given_name="Ērika", family_name="Šķēle", language="en")
    token = mint({contract: "owner"}, subject=person, acr=SUBSTANTIAL, auth_time=int(time.time()))
    return {"contract": contract, "person": person, "email": email, "token": token}


def test_owner_invites_lists_changes_resends_and_cancels(gateway, holder, maildir):
    contract, token = holder["contract"], holder["token"]
    invitee = unique_email("sub")
    started = now()
    created = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json={
        "name": "Pēteris Kalns", "email": invitee.upper(), "level": "bills", "valid_until": "2099-12-31"})
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    assert (user["status"], user["role"], user["level"], user["email"]) == ("invited", "subuser", "bills", invitee)
    first_link = invitation_link(maildir, invitee, after=started)

    listed = gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(token)).get_json()["items"]
    assert [(u["role"], u["status"]) for u in listed] == [("owner", "active"), ("subuser", "invited")]

    changed = gateway.patch(f"/api/v1/contracts/{contract}/users/{user['id']}", headers=bearer(token),
                            json={"level": "bills_readings"})
    assert changed.status_code == 200 and changed.get_json()["level"] == "bills_readings"

    resent = gateway.post(f"/api/v1/contracts/{contract}/users/{user['id']}/resend", headers=bearer(token))
    assert resent.status_code == 200
    second_link = invitation_link(maildir, invitee, after=started, count=2)
    assert second_link != first_link
    old = requests.get(first_link, timeout=10)
    assert old.status_code == 400 and "aizstāts" in old.text
    assert requests.get(second_link, timeout=10, allow_redirects=False).status_code == 302

    cancelled = gateway.delete(f"/api/v1/contracts/{contract}/users/{user['id']}", headers=bearer(token))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "revoked"
    assert requests.get(second_link, timeout=10).status_code == 400
    again = gateway.delete(f"/api/v1/contracts/{contract}/users/{user['id']}", headers=bearer(token))
    assert again.status_code == 409 and again.content_type == "application/problem+json"

    activity = gateway.get(f"/api/v1/contracts/{contract}/activity", headers=bearer(token)).get_json()
    actions = [e["action"] for e in activity["events"]]
    assert actions[:4] == ["invitation_cancelled", "invitation_resent", "user_changed", "user_invited"]
    assert {e["actor"] for e in activity["events"][:4]} == {"Ērika Šķēle"}
    assert {e["actor_role"] for e in activity["events"][:4]} == {"owner"}


def test_bad_user_details_list_each_field_and_change_nothing(gateway, holder):
    contract, token = holder["contract"], holder["token"]
    before = grants_on(contract)
    bad = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json={
        "name": "", "email": "not-an-address", "level": "everything", "valid_until": "31.12.2030"})
    assert bad.status_code == 422  # the gateway's schema
    assert {e["field"] for e in bad.get_json()["errors"]} == {"name", "email", "level", "valid_until"}
    bad = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json={
        "name": "A", "email": unique_email(), "level": "bills", "personal_code": "010111-22341",
        "valid_until": "2001-01-01"})
    assert bad.status_code == 422  # identity's rules
    assert {e["field"] for e in bad.get_json()["errors"]} == {"personal_code", "valid_until"}
    for body in ({"name": "A", "email": unique_email(), "level": "bills", "contract": "LVG-100001"},
                 {"name": "A", "email": unique_email(), "level": "bills", "role": "owner"},
                 {"name": "A", "email": unique_email(), "level": "bills", "status": "active"}):
        refused = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json=body)
        assert refused.status_code == 422, body
    assert gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), data="[]",
                        content_type="application/json").status_code == 422
    assert grants_on(contract) == before


def test_the_same_person_cannot_be_invited_twice_even_at_the_same_moment(gateway, gateway_url, holder):
    from concurrent.futures import ThreadPoolExecutor

    contract, token = holder["contract"], holder["token"]
    body = {"name": "Anna", "email": unique_email(), "level": "bills"}

    def invite(_: int) -> int:
        return requests.post(f"{gateway_url}/api/v1/contracts/{contract}/users", headers=bearer(token), json=body,
                             timeout=15).status_code

    with ThreadPoolExecutor(4) as pool:
        answers = sorted(pool.map(invite, range(4)))
    assert answers == [201, 409, 409, 409]
    assert gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json=body).status_code == 409


def test_a_low_session_is_asked_to_step_up_and_nothing_changes(gateway, holder, mint):
    contract = holder["contract"]
    weak = mint({contract: "owner"}, subject=holder["person"], acr=LOW)
    assert gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(weak)).status_code == 200
    before = grants_on(contract)
    refused = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(weak),
                           json={"name": "A", "email": unique_email(), "level": "bills"})
    assert refused.status_code == 403
    assert 'error="insufficient_user_authentication"' in refused.headers["WWW-Authenticate"]
    assert refused.get_json()["acr_values"] == SUBSTANTIAL
    assert grants_on(contract) == before


def test_a_subuser_cannot_manage_users_and_nobody_sees_another_contract(gateway, holder, mint, new_contract):
    contract = holder["contract"]
    person, _ = plant_person(contract, "subuser", "bills_readings")
    sub = mint({contract: ("subuser", "bills_readings")}, subject=person, acr=SUBSTANTIAL)
    refused = gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(sub))
    assert refused.status_code == 403 and refused.get_json()["missing_right"] == "users:manage"
    assert gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(sub),
                        json={"name": "A", "email": unique_email(), "level": "bills"}).status_code == 403
    other = new_contract().number
    for method, path in (("get", f"/api/v1/contracts/{other}/users"), ("post", f"/api/v1/contracts/{other}/users"),
                         ("get", f"/api/v1/contracts/{other}/activity")):
        answer = getattr(gateway, method)(path, headers=bearer(holder["token"]),
                                          json={"name": "A", "email": unique_email(), "level": "bills"})
        assert answer.status_code == 404, (method, path)


def test_a_token_claiming_a_grant_identity_does_not_have_is_refused_by_identity(rpc, holder, mint):
    """Defence in depth: identity checks the caller's grant in its own database, not only the token."""
    contract = holder["contract"]
    forged_person, _ = plant_person(None)
    token = mint({contract: "owner"}, subject=forged_person, acr=SUBSTANTIAL)
    with pytest.raises(NotFound):
        rpc.call("identity", "list_users", contract, context={"authorization": f"Bearer {token}"})


def test_a_delegate_whose_mandate_ended_is_refused(gateway, holder, mint):
    contract = holder["contract"]
    yesterday = riga_today() - timedelta(days=1)
    person, _ = plant_person(contract, "delegate", valid_until=yesterday)
    # A token minted while the mandate stood (no end in it): identity still refuses, from its database.
    stale = mint({contract: "delegate"}, subject=person, acr=SUBSTANTIAL)
    assert gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(stale)).status_code == 404
    # And a token carrying the end is refused at the gateway and at billing alike.
    ended = mint({contract: TokenGrant(contract, Role.DELEGATE, ALL_RIGHTS, end_of_day_epoch(yesterday))},
                 subject=person, acr=SUBSTANTIAL)
    assert gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(ended)).status_code == 404


def test_a_delegate_manages_subusers_but_not_other_mandates(gateway, holder, mint):
    contract = holder["contract"]
    delegate, _ = plant_person(contract, "delegate", valid_until=riga_today() + timedelta(days=30))
    _, other_mandate = plant_person(contract, "delegate", valid_until=riga_today() + timedelta(days=30))
    token = mint({contract: "delegate"}, subject=delegate, acr=SUBSTANTIAL, auth_time=int(time.time()))
    added = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token),
                         json={"name": "Sub", "email": unique_email(), "level": "bills"})
    assert added.status_code == 201
    assert gateway.delete(f"/api/v1/contracts/{contract}/users/{other_mandate}",
                          headers=bearer(token)).status_code == 403
    assert gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token), json={
        "name": "D2", "email": unique_email(), "role": "delegate", "personal_code": "161175-19997",
        "valid_until": "2099-01-01"}).status_code == 403
    owner_grant = next(u for u in gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(token))
                       .get_json()["items"] if u["role"] == "owner")
    assert gateway.delete(f"/api/v1/contracts/{contract}/users/{owner_grant['id']}",
                          headers=bearer(token)).status_code == 403
    activity = gateway.get(f"/api/v1/contracts/{contract}/activity", headers=bearer(token)).get_json()
    assert activity["events"][0]["action"] == "user_invited" and activity["events"][0]["actor_role"] == "delegate"


def test_the_holder_grants_a_mandate_online_signed_by_a_fresh_strong_login(gateway, holder, mint, maildir):
    contract = holder["contract"]
    body = {"name": "Laura Ozoliņa", "email": unique_email("mandate"), "role": "delegate",
            "personal_code": "320000-00008", "valid_until": (riga_today() + timedelta(days=200)).isoformat()}
    stale = mint({contract: "owner"}, subject=holder["person"], acr=SUBSTANTIAL,
                 auth_time=int(time.time()) - 3600)
    refused = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(stale), json=body)
    assert refused.status_code == 403 and "max_age=900" in refused.headers["WWW-Authenticate"]
    assert refused.get_json()["max_age"] == 900  # numbers in a service's error reach the caller as numbers
    missing = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(holder["token"]),
                           json={k: v for k, v in body.items() if k not in ("personal_code", "valid_until")})
    assert {e["field"] for e in missing.get_json()["errors"]} == {"personal_code", "valid_until"}
    started = now()
    granted = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(holder["token"]), json=body)
    assert granted.status_code == 201
    assert (granted.get_json()["role"], granted.get_json()["status"]) == ("delegate", "invited")
    assert invitation_link(maildir, body["email"], after=started)


def test_revoking_an_active_subuser_refuses_their_token_at_billing_within_a_second(gateway, holder, mint, maildir):
    contract = holder["contract"]
    email = unique_email("revoked")
    person, grant = plant_person(contract, "subuser", "bills", email=email, language="en")
    sub = mint({contract: ("subuser", "bills")}, subject=person)
    assert gateway.get(f"/api/v1/contracts/{contract}/balance", headers=bearer(sub)).status_code == 200
    started = now()
    revoked = gateway.delete(f"/api/v1/contracts/{contract}/users/{grant}", headers=bearer(holder["token"]))
    assert revoked.status_code == 200 and revoked.get_json()["status"] == "revoked"
    at = time.monotonic()
    wait_until("billing to refuse the revoked grant", lambda: gateway.get(
        f"/api/v1/contracts/{contract}/balance", headers=bearer(sub)).status_code == 404, timeout=5)
    assert time.monotonic() - at < 1.0
    wait_until("the notice to the person", lambda: mails(maildir, to=email, after=started), timeout=20)


def test_end_dates_are_kept_and_ended_grants_are_closed_and_announced(gateway, holder, mint):
    contract = holder["contract"]
    _, grant = plant_person(contract, "subuser", "bills", valid_until=riga_today() - timedelta(days=1))
    with identity_session() as session:
        end_ended_grants(session)
    with identity_session() as session:
        row = session.get(Grant, grant)
        assert (row.status, row.end_reason) == ("ended", "end date passed")
    listed = gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(holder["token"])).get_json()["items"]
    assert next(u for u in listed if u["id"] == grant)["status"] == "ended"


def test_an_expired_invitation_shows_as_expired_and_can_be_resent(gateway, holder, maildir):
    contract, token = holder["contract"], holder["token"]
    invitee = unique_email("late")
    started = now()
    user = gateway.post(f"/api/v1/contracts/{contract}/users", headers=bearer(token),
                        json={"name": "Late", "email": invitee, "level": "bills"}).get_json()
    link = invitation_link(maildir, invitee, after=started)
    with identity_session() as session:
        for row in session.scalars(select(Invitation).where(Invitation.grant_id == user["id"])):
            row.expires_at = datetime.now(UTC) - timedelta(minutes=1)
    expired = requests.get(link, timeout=10)
    assert expired.status_code == 400 and ("expired" in expired.text or "termiņš" in expired.text)
    listed = gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(token)).get_json()["items"]
    assert next(u for u in listed if u["id"] == user["id"])["status"] == "expired"
    assert gateway.post(f"/api/v1/contracts/{contract}/users/{user['id']}/resend",
                        headers=bearer(token)).get_json()["status"] == "invited"


def test_a_transferred_contract_ends_the_previous_holders_access_and_what_they_granted(tmp_path, holder, gateway):
    from tests.support.stack import HEADER, run_import

    contract = holder["contract"]
    with identity_session() as session:
        from klients_identity.models import Person

        session.get(Person, holder["person"]).personal_code = random_personal_code()
    _, sub_grant = plant_person(contract, "subuser", "bills", email=unique_email("sub-of-old"))
    new_code = random_personal_code()
    new_holder, _ = plant_person(None, personal_code=new_code, given_name="Jaunais", family_name="Turētājs")
    moved = run_import(tmp_path, HEADER + f"{contract},Jaunais Turētājs,{new_code},Ielas 2,,active,2020-01-01,\n")
    assert moved.returncode == 0, moved.stderr

    def settled() -> bool:
        with identity_session() as session:
            rows = {g.person_id: g.status for g in session.scalars(select(Grant).where(Grant.contract == contract))}
        return rows.get(new_holder) == "active" and rows.get(holder["person"]) == "revoked"

    wait_until("identity to follow the register", settled, timeout=15)
    with identity_session() as session:
        assert session.get(Grant, sub_grant).end_reason == "contract transferred to a new holder"
    assert gateway.get(f"/api/v1/contracts/{contract}/users", headers=bearer(holder["token"])).status_code == 404


def test_readings_and_payments_appear_on_the_activity_list_with_who_and_in_which_role(gateway, mint, new_meter):
    from datetime import date

    meter = new_meter([(date(2025, m, 28), 100 * m) for m in range(1, 13)], installed_on=date(2024, 12, 28))
    contract = meter.contract
    owner, _ = plant_person(contract, given_name="Ērika", family_name="Šķēle")
    sub, _ = plant_person(contract, "subuser", "bills_readings", given_name="Pēteris", family_name="Kalns")
    submitted = gateway.post(f"/api/v1/contracts/{contract}/meters/{meter.serial_number}/readings",
                             json={"value": 1250},
                             headers=bearer(mint({contract: ("subuser", "bills_readings")}, subject=sub)))
    assert submitted.status_code == 201, submitted.get_json()
    token = mint({contract: "owner"}, subject=owner, acr=SUBSTANTIAL)

    def reading_listed() -> list:
        events = gateway.get(f"/api/v1/contracts/{contract}/activity", headers=bearer(token)).get_json()["events"]
        return [e for e in events if e["action"] == "reading_submitted"]

    wait_until("the reading on the activity list", reading_listed, timeout=15)
    entry = reading_listed()[0]
    assert (entry["actor"], entry["actor_role"], entry["detail"]["value"]) == ("Pēteris Kalns", "subuser", 1250)
