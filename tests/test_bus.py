"""The bus as a trust boundary, and a backbone that loses nothing (klients_common.bus, docs/bus.md).

Attacks come from whoever can reach RabbitMQ: another component's credential (the broker refuses what its
permissions do not allow), the administrator's credential without a user id or with its own (the broker
delivers, the consumer refuses and dead-letters), a forged user id (the broker refuses). Each forged event is
shown to change nothing; the dead-letter listing says why it was refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest
import requests
from amqp.exceptions import AccessRefused, PreconditionFailed
from kombu import Connection, Exchange
from sqlalchemy import select, text

from klients_billing.models import MeteredConsumption
from klients_common.bus import SUBSCRIPTIONS, AuthenticatedEventHandler
from klients_common.bus_setup import Settings, setup
from klients_common.events import catalogue_markdown
from klients_identity.models import Grant
from klients_notifications.models import ContractContact
from tests.support.access_helpers import plant_person
from tests.support.stack import (
    BIN,
    ROOT,
    Stack,
    admin_uri,
    bus_uri,
    identity_session,
    publish,
    publish_event,
    random_personal_code,
    wait_until,
)

pytestmark = pytest.mark.usefixtures("stack")
PREFIX = os.environ["BUS_USER_PREFIX"]


def dead_letters(component: str) -> list[dict]:
    """The operators' listing of ``component``'s dead letters (``klients-<component> dead-letters --json``)."""
    listed = subprocess.run([str(BIN / f"klients-{component}"), "dead-letters", "--json"], capture_output=True,
                            text=True, check=False, env={**os.environ, "AMQP_URI": bus_uri(component)})
    assert listed.returncode == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def dead_letter(component: str, event_id: str) -> dict | None:
    return next((letter for letter in dead_letters(component) if letter["id"] == event_id), None)


def transfer(contract: str, personal_code: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "contract": contract, "holder_personal_code": personal_code,
            "on": "2026-11-30"}


def reading(contract: str, meter: str = "S-1") -> dict:
    return {"event_id": str(uuid.uuid4()), "contract": contract, "meter": meter, "reading_id": 7, "value": 140,
            "read_on": "2026-11-28", "period": "2026-11", "source": "customer", "consumption_m3": 40,
            "consumption_kwh": "420.000", "rollover": False, "flagged": False, "submitted_by": "p",
            "submitted_role": "owner", "submitted_at": "2026-11-28T09:00:00+00:00", "replaces": None}


def grants_on(contract: str) -> set[tuple[str, str, str]]:
    with identity_session() as session:
        rows = session.scalars(select(Grant).where(Grant.contract == contract))
        return {(g.person_id, g.role, g.status) for g in rows}


# --- the broker refuses what a credential's permissions do not allow ----------------------------------------

@pytest.mark.parametrize(("component", "exchange", "event"), [
    ("notifications", "billing.events", "contract_transferred"),  # another component's exchange
    ("metering", "billing.events", "contract_transferred"),
    ("gateway", "identity.events", "grant_revoked"),
    ("billing", "billing.events", "grant_revoked"),  # its own exchange, an event type it does not own
    ("billing", "", "evt-billing-contract_transferred--identity.on_contract_transferred"),  # straight into a queue
])
def test_a_component_cannot_publish_what_it_does_not_own(component, exchange, event):
    with pytest.raises(AccessRefused):
        publish(bus_uri(component), exchange, event, transfer("LVG-100002", "010101-10006"),
                          user_id=PREFIX + component)


def test_the_broker_refuses_a_user_id_that_is_not_the_connections():
    with pytest.raises(PreconditionFailed):
        publish(admin_uri(), "billing.events", "contract_transferred", transfer("LVG-100002", "010101-10006"),
                          user_id=PREFIX + "billing")


def test_a_component_cannot_read_another_components_events_or_queues():
    """Binding to an event type it does not consume (a password-reset link, say), or consuming another's queue,
    is refused."""
    from kombu import Queue

    with Connection(bus_uri("billing")) as conn, pytest.raises(AccessRefused):
        Queue("evt-identity-password_reset_requested--billing.snoop", durable=True,
              exchange=Exchange("identity.events", type="topic", no_declare=True),
              routing_key="password_reset_requested")(conn.channel()).declare()
    with Connection(bus_uri("billing")) as conn, pytest.raises(AccessRefused):
        Queue("evt-identity-password_reset_requested--notifications.on_password_reset",
              no_declare=True)(conn.channel()).get()


# --- the consumer refuses what the broker lets through from a credential with every permission -------------

def test_a_forged_transfer_changes_no_access_and_the_real_one_does():
    """The holder keeps the contract against forgeries from a credential with every permission (no user id,
    and the administrator's own); the same event from billing's credential moves it, so the test sees it."""
    contract = f"V-{uuid.uuid4().hex[:10].upper()}"
    holder, _ = plant_person(contract, personal_code=random_personal_code())
    taker_code = random_personal_code()
    taker, _ = plant_person(personal_code=taker_code)
    before = grants_on(contract)
    assert before == {(holder, "owner", "active")}
    for properties in ({}, {"user_id": Settings().admin_user}):
        forged = transfer(contract, taker_code)
        publish(admin_uri(), "billing.events", "contract_transferred", forged, **properties)
        wait_until("the forged transfer in identity's dead letters",
                   lambda f=forged: dead_letter("identity", f["event_id"]), timeout=15)
        letter = dead_letter("identity", forged["event_id"])
        assert letter["event"] == "contract_transferred" and letter["why"].startswith("forged")
        assert letter["queue"] == "evt-billing-contract_transferred--identity.on_contract_transferred"
    assert grants_on(contract) == before
    publish_event("contract_transferred", transfer(contract, taker_code))
    wait_until("the real transfer applied", lambda: grants_on(contract) == {
        (holder, "owner", "revoked"), (taker, "owner", "active")}, timeout=15)


def test_a_forged_reading_sets_no_billed_consumption(billing_sessions):
    contract = f"F-{uuid.uuid4().hex[:10].upper()}"
    forged = reading(contract)
    publish(admin_uri(), "metering.events", "reading_accepted", forged)
    for component in ("billing", "notifications", "identity"):  # every consumer refuses it
        wait_until(f"the forged reading in {component}'s dead letters",
                   lambda c=component: dead_letter(c, forged["event_id"]), timeout=15)
    with billing_sessions() as session:
        assert session.scalar(select(MeteredConsumption).where(MeteredConsumption.contract == contract)) is None


def test_a_forged_registration_redirects_no_mail(notifications_sessions):
    forged = {"event_id": str(uuid.uuid4()), "contract": "LVG-100001", "email": "thief@example.org",
              "holder_name": "X", "status": "active"}
    with notifications_sessions() as session:
        before = session.get(ContractContact, "LVG-100001")
        before = before.email if before else None
    publish(admin_uri(), "billing.events", "contract_registered", forged)
    wait_until("the forged registration dead-lettered", lambda: dead_letter("notifications", forged["event_id"]),
               timeout=15)
    with notifications_sessions() as session:
        after = session.get(ContractContact, "LVG-100001")
        assert (after.email if after else None) == before != "thief@example.org"


def test_the_owner_s_event_with_a_bad_date_is_refused_and_never_applied(billing_sessions):
    """Schema checks, date formats included, from the rightful producer's credential."""
    contract = f"D-{uuid.uuid4().hex[:10].upper()}"
    bad = {**reading(contract), "read_on": "2026-02-30"}
    publish_event("reading_accepted", bad)
    wait_until("the invalid reading dead-lettered", lambda: dead_letter("billing", bad["event_id"]), timeout=15)
    assert "invalid_payload" in dead_letter("billing", bad["event_id"])["why"]
    with billing_sessions() as session:
        assert session.scalar(select(MeteredConsumption).where(MeteredConsumption.contract == contract)) is None


# --- bounded redelivery, and putting a dead letter back after a fix ---------------------------------------------

def test_a_poison_event_is_dead_lettered_after_its_deliveries_and_applies_once_when_resent(billing_sessions):
    contract = f"P-{uuid.uuid4().hex[:10].upper()}"
    poison = reading(contract, meter="M" * 40)  # valid, but longer than billing's column: fails every time
    publish_event("reading_accepted", poison)
    wait_until("the poison event in billing's dead letters", lambda: dead_letter("billing", poison["event_id"]),
               timeout=30)
    letter = dead_letter("billing", poison["event_id"])
    assert letter["reason"] == "delivery_limit" and letter["why"].startswith("failed in its handler")
    with billing_sessions() as session:
        assert session.scalar(select(MeteredConsumption).where(MeteredConsumption.contract == contract)) is None
        # The fix: a wider column (as a migration would ship it).
        session.execute(text("ALTER TABLE metered_consumption ALTER COLUMN meter TYPE varchar(64)"))
        session.commit()
    resent = subprocess.run([str(BIN / "klients-billing"), "resend", poison["event_id"]], capture_output=True,
                            text=True, check=False, env={**os.environ, "AMQP_URI": bus_uri("billing")})
    assert resent.returncode == 0 and "1 dead letter(s) put back" in resent.stdout

    def applied() -> int:
        with billing_sessions() as session:
            return len(session.scalars(select(MeteredConsumption).where(
                MeteredConsumption.contract == contract)).all())

    wait_until("the resent event applied", lambda: applied() == 1, timeout=15)
    assert dead_letter("billing", poison["event_id"]) is None


# --- topology as code: nothing is lost when the consumer comes later ------------------------------------------

def test_an_event_published_before_its_consumer_ever_ran_waits_for_it(notifications_sessions):
    settings = Settings()
    settings.vhost = f"klients_test_fresh_{uuid.uuid4().hex[:6]}"
    setup(settings, fresh=True)  # what a deploy does before any component starts
    try:
        billing = settings.uri(PREFIX + "billing", settings.password("billing"))
        contracts = [f"N-{uuid.uuid4().hex[:10].upper()}" for _ in range(5)]
        for contract in contracts:
            publish(billing, "billing.events", "contract_registered",
                              {"event_id": str(uuid.uuid4()), "contract": contract, "email": f"{contract}@example.org",
                               "holder_name": "N", "status": "active"}, user_id=PREFIX + "billing")
        late = Stack()
        late.start("notifications-late", str(BIN / "klients-notifications"), "run",
                   env={"AMQP_URI": settings.uri(PREFIX + "notifications", settings.password("notifications"))})
        try:
            def known() -> int:
                with notifications_sessions() as session:
                    return sum(1 for c in contracts if session.get(ContractContact, c) is not None)

            wait_until("every early event applied", lambda: known() == len(contracts), timeout=30)
        finally:
            late.stop_all()
    finally:
        requests.delete(f"{settings.management_url}/api/vhosts/{settings.vhost}",
                        auth=(settings.admin_user, settings.admin_password), timeout=10)


# --- one event, one shape: the catalogue and its document ---------------------------------------------------------

def test_the_event_catalogue_document_is_generated_from_the_code():
    assert (ROOT / "docs" / "events.md").read_text() == catalogue_markdown(), \
        "docs/events.md is stale: run .venv/bin/klients-bus catalogue > docs/events.md"


def test_the_catalogue_lists_exactly_the_handlers_the_services_have():
    """Who consumes what is stated once, in the catalogue (permissions and queues are made from it); a
    handler it does not list, or a listed one no service has, fails here (and the former at its start)."""
    from klients_billing.service import BillingService
    from klients_identity.events.keycloak_sync import KeycloakSyncService
    from klients_identity.events.service import IdentityService
    from klients_metering.service import MeteringService
    from klients_notifications.service import NotificationsService

    handlers = set()
    for service in (BillingService, IdentityService, KeycloakSyncService, MeteringService, NotificationsService):
        for name in dir(service):
            for entrypoint in getattr(getattr(service, name), "nameko_entrypoints", ()):
                if isinstance(entrypoint, AuthenticatedEventHandler):
                    handlers.add((entrypoint.source_service, entrypoint.event_type, service.name, name))
    assert handlers == {(source, event, service, method) for source, event, service, method, _ in SUBSCRIPTIONS}


def test_a_producer_cannot_write_a_malformed_or_unknown_event():
    """Producers cannot emit a malformed event: ``outbox.enqueue`` checks the schema in their transaction."""
    from klients_common.events import EventRejected
    from klients_common.outbox import enqueue

    with pytest.raises(EventRejected):
        enqueue(None, None, "reading_accepted", {**reading("X"), "read_on": "2026-02-30"})  # type: ignore[arg-type]
    with pytest.raises(EventRejected):
        enqueue(None, None, "made_up_event", {})  # type: ignore[arg-type]
