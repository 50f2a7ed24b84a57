"""Nothing is lost when PostgreSQL or RabbitMQ restarts: services reconnect by themselves, and an event
written while the broker was down leaves the outbox once it is back."""

from __future__ import annotations

import subprocess
import uuid
from datetime import date, datetime

from sqlalchemy import select

from klients_billing.models import MeteredConsumption
from klients_metering import readings
from klients_metering.window import RIGA
from tests.support.stack import wait_until


def call_ok(rpc, token) -> bool:
    try:
        return rpc.call("billing", "get_contract", "LVG-100001", context={"authorization": f"Bearer {token}"},
                        timeout=2)["number"] == "LVG-100001"
    except Exception:
        return False


def test_services_recover_after_a_postgresql_restart(rpc, mint):
    token = mint({"LVG-100001": "owner"})
    assert call_ok(rpc, token)
    subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, capture_output=True)
    wait_until("billing answering after the restart", lambda: call_ok(rpc, token), timeout=60)


def test_an_event_written_while_rabbitmq_is_down_is_delivered_when_it_is_back(rpc, mint, new_meter,
                                                                            metering_sessions, billing_sessions):
    meter = new_meter([(date(2026, 10, 28), 500)], installed_on=date(2026, 9, 28))
    subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True, capture_output=True)
    try:
        with metering_sessions() as session:
            readings.record_reading(db_session=session, contract=meter.contract, serial=meter.serial_number,
                                    value=560, read_on=date(2026, 11, 28), source="operator",
                                    now=datetime(2026, 11, 28, 10, tzinfo=RIGA),
                                    actor=readings.Actor(f"op-{uuid.uuid4().hex[:6]}", "operator"))
            session.commit()
    finally:
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True, capture_output=True)
        subprocess.run(["rabbitmqctl", "-q", "await_startup"], check=True, capture_output=True)

    def billed() -> bool:
        with billing_sessions() as session:
            return session.scalar(select(MeteredConsumption.consumption_m3).where(
                MeteredConsumption.contract == meter.contract)) == 60

    wait_until("billing to receive the reading written during the outage", billed, timeout=90)
    token = mint({"LVG-100001": "owner"})
    wait_until("RPC after the broker restart", lambda: call_ok(rpc, token), timeout=60)
