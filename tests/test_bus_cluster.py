"""The backbone loses nothing and doubles nothing on a real three-node RabbitMQ cluster with quorum queues:
500 readings flow from metering's outbox to billing, notifications and identity while a broker node is
killed (SIGKILL) and started again, and while PostgreSQL restarts.

The cluster has its own vhost, users and topology (made by ``klients-bus setup``, as a deploy does), and the
services run on databases of their own, so nothing here touches the rest of the suite's system.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from klients_billing.models import MeteredConsumption
from klients_common.bus_setup import Settings, setup
from klients_common.db import make_engine, transaction
from klients_common.outbox import enqueue
from klients_common.rpc import RpcClient
from klients_identity.models import AuditEvent
from klients_metering.models import outbox
from klients_notifications.models import ContractContact, Delivery
from tests.support.cluster import Cluster
from tests.support.helpers import mails
from tests.support.stack import BIN, MIGRATED, Stack, reset_database, wait_until

READINGS = 500
VHOST = "klients_cluster"


def database_url(service: str) -> str:
    return os.environ[f"{service.upper()}_DATABASE_URL"].replace("klients_test_", "klients_test_cluster_")


def sessions(service: str) -> sessionmaker:
    return sessionmaker(make_engine(database_url(service)), expire_on_commit=False)


class OnCluster:
    """The bus settings for the cluster: every component's URI lists all three nodes (kombu fails over)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.settings = Settings()
        self.settings.vhost = VHOST
        self.settings.management_url = cluster.management_url()
        self.settings.admin_password = secrets.token_urlsafe(16)

    def uri(self, component: str) -> str:
        uris = []
        for port in self.cluster.ports:
            self.settings.host = f"127.0.0.1:{port}"
            uris.append(self.settings.component_uri(component, create=True))
        return ";".join(uris)

    def queues(self) -> dict[str, int]:
        """Messages (ready and unacknowledged) in every queue of the vhost, as the first node counts them."""
        answer = requests.get(f"{self.cluster.management_url()}/api/queues/{VHOST}",
                              params={"columns": "name,messages"}, timeout=10,
                              auth=(self.settings.admin_user, self.settings.admin_password))
        answer.raise_for_status()
        return {q["name"]: int(q.get("messages") or 0) for q in answer.json()}


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnCluster]:
    cluster = Cluster(tmp_path_factory.mktemp("rabbitmq-cluster"))
    try:
        cluster.up()
        on = OnCluster(cluster)
        cluster.ctl(0, "add_user", on.settings.admin_user, on.settings.admin_password)
        cluster.ctl(0, "set_user_tags", on.settings.admin_user, "administrator")
        on.settings.host = f"127.0.0.1:{cluster.ports[0]}"
        setup(on.settings, fresh=True)
        yield on
    finally:
        cluster.down()


@pytest.fixture(scope="module")
def services(bus: OnCluster, smtp: object) -> Iterator[Stack]:
    """identity's, billing's, metering's and notifications' services on the cluster and their own databases."""
    for service in MIGRATED:
        reset_database(service, database_url(service), bus.uri(service))
    env = {f"{s.upper()}_DATABASE_URL": database_url(s) for s in MIGRATED}
    env["OUTBOX_INTERVAL"] = "0.5"
    running = Stack()
    checker = RpcClient(bus.uri("gateway"), timeout=5)
    try:
        for service in ("identity", "billing", "metering", "notifications"):
            running.start(f"cluster-{service}", str(BIN / f"klients-{service}"), "run",
                          env={**env, "AMQP_URI": bus.uri(service)})
            wait_until(f"{service} on the cluster", lambda s=service: checker.call(s, "ping", timeout=1) == "pong")
        yield running
    finally:
        checker.close()
        running.stop_all()


def readings(prefix: str, count: int) -> list[dict]:
    now = datetime.now(UTC)
    return [{"contract": f"{prefix}-{i:04d}", "meter": f"M-{prefix}-{i:04d}", "reading_id": i + 1, "value": 100 + i,
             "read_on": now.date().isoformat(), "period": f"{now:%Y-%m}", "source": "customer",
             "consumption_m3": 1 + i % 50, "consumption_kwh": f"{(1 + i % 50) * 10.5:.3f}", "rollover": False,
             "flagged": False, "submitted_by": f"p-{prefix}-{i}", "submitted_role": "owner",
             "submitted_at": now.isoformat(), "replaces": None} for i in range(count)]


def write(prefix: str, count: int) -> list[str]:
    """Give each contract an address at notifications, then put the readings in metering's outbox, as
    metering does when it accepts them; return the event ids."""
    payloads = readings(prefix, count)
    with transaction(sessions("notifications")) as session:
        for p in payloads:
            session.add(ContractContact(contract=p["contract"], email=f"{p['contract'].lower()}@cluster.example",
                                        holder_name="K", updated_at=datetime.now(UTC)))
    with transaction(sessions("metering")) as session:
        return [enqueue(session, outbox, "reading_accepted", p) for p in payloads]


def applied(prefix: str, ids: list[str]) -> tuple[int, int, int]:
    """(billed consumption rows, e-mails sent, activity entries) for the prefix's readings."""
    with sessions("billing")() as session:
        billed = session.scalar(select(func.count()).select_from(MeteredConsumption).where(
            MeteredConsumption.contract.like(f"{prefix}-%")))
    with sessions("notifications")() as session:
        sent = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.event_id.in_(ids), Delivery.status == "sent"))
    with sessions("identity")() as session:
        listed = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "reading_submitted", AuditEvent.contract.like(f"{prefix}-%")))
    return billed, sent, listed


def flow_through(prefix: str, count: int, trouble: Callable[[], None]) -> list[str]:
    """Write the readings, cause the trouble while they flow, and wait until each took effect everywhere."""
    ids = write(prefix, count)
    trouble()
    wait_until(f"every {prefix} reading applied once everywhere", lambda: applied(prefix, ids) == (count,) * 3,
               timeout=90)
    return ids


def test_nothing_lost_or_doubled_through_a_killed_node_and_a_postgresql_restart(bus, services, maildir):
    started = time.time()
    cluster = bus.cluster

    def kill_a_node() -> None:
        time.sleep(0.5)  # the relay and the consumers are busy
        cluster.kill(0)  # the node every client connected to first
        time.sleep(3)
        cluster.start(0)
        cluster.wait(0)

    def restart_postgresql() -> None:
        time.sleep(0.5)
        subprocess.run(["pg_ctlcluster", "15", "main", "restart"], check=True, capture_output=True)

    half = READINGS // 2
    first = f"K{uuid.uuid4().hex[:4].upper()}"
    second = f"P{uuid.uuid4().hex[:4].upper()}"
    first_ids = flow_through(first, half, kill_a_node)
    second_ids = flow_through(second, READINGS - half, restart_postgresql)

    # No event applied twice, also after every redelivery has had its chance: one consumption row per contract,
    # one activity entry and one e-mail per event, and as many mails in the SMTP server's folder as readings.
    wait_until("every queue empty", lambda: not any(bus.queues().values()), timeout=30)
    assert applied(first, first_ids) == (half,) * 3
    assert applied(second, second_ids) == (READINGS - half,) * 3
    ours = [m for m in mails(maildir, after=started) if str(m["To"]).endswith("@cluster.example")]
    assert len(ours) == READINGS and len({m["To"] for m in ours}) == READINGS
    # The services said they lost the node (with the whole fail-over URI), and named no password doing so.
    logs = {s: (services.logs / f"cluster-{s}.log").read_text() for s in ("identity", "billing", "metering")}
    assert any("Connection to broker lost" in text for text in logs.values())
    for service, text in logs.items():
        assert bus.settings.password(service) not in text, f"{service}'s broker password is in its log"
    # Nothing waits anywhere, dead-letter queues included (they exist, and are empty).
    assert {name for name in bus.queues() if name.endswith(".dead-letters")} == {
        "identity.dead-letters", "billing.dead-letters", "metering.dead-letters", "notifications.dead-letters"}
