"""The running system for tests and benchmarks: real identity, nameko services and SMTP as subprocesses.

Settings come from ``deploy/test.env`` (a variable already in the environment wins). Databases are
emptied and migrated from scratch once per session, so every run starts from the same state.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import text

from klients_common.db import make_engine, migrate
from klients_common.riga import riga_today
from klients_common.rpc import RpcClient, ServiceUnavailable

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVICES = ("identity", "billing", "metering", "notifications")  # identity first: the others load its revocations
MIGRATED = ("identity", "billing", "metering", "notifications")


def load_env() -> None:
    """Put deploy/test.env into ``os.environ`` without overriding what is already set."""
    for line in (ROOT / "deploy" / "test.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            os.environ.setdefault(key.strip(), value.strip())
    os.environ["KLIENTS_VAR_DIR"] = str(ROOT / os.environ["KLIENTS_VAR_DIR"])
    for name in ("BUS_SECRETS_DIR", "BUS_ADMIN_PASSWORD_FILE"):
        os.environ[name] = str(ROOT / os.environ[name])
    # The test process itself talks to the services as the gateway does (its RPC client, the in-process app).
    os.environ.setdefault("AMQP_URI", bus_uri("gateway"))
    # The suite submits readings today, whatever the date: open the window on today's day of the month
    # (it then closes on the next month's first working day, so it is open now). Window edges are
    # tested on the rules themselves, with chosen dates.
    os.environ.setdefault("READING_WINDOW_OPEN_DAY", str(riga_today().day))


def bus_uri(component: str) -> str:
    """Return the AMQP URI ``component`` connects with on the test vhost (its password made on first use)."""
    from klients_common.bus_setup import Settings

    return Settings().component_uri(component, create=True)


def admin_uri() -> str:
    """Return the administrator's AMQP URI on the test vhost (for observing the bus, and for attacks that
    need a credential with every permission)."""
    from klients_common.bus_setup import Settings

    return Settings().admin_uri()


def reset_bus() -> None:
    """Delete the test vhost and set it up from nothing: users, permissions, every queue (fresh-machine truth)."""
    from klients_common.bus_setup import Settings, setup

    setup(Settings(), fresh=True)


def publish(uri: str, exchange: str, routing_key: str, payload: Any, **properties: str) -> None:
    """Publish with publisher confirms (a refusal by the broker raises here); ``exchange`` "" is the default
    exchange, straight into the queue named by ``routing_key``."""
    from kombu import Connection, Exchange

    with Connection(uri, transport_options={"confirm_publish": True}) as conn:
        target = Exchange(exchange, type="topic", durable=True, no_declare=True) if exchange else ""
        conn.Producer(serializer="json").publish(payload, exchange=target, routing_key=routing_key,
                                                 delivery_mode=2, **properties)


def publish_event(event_type: str, payload: Any) -> None:
    """Publish an event as its producer's outbox relay does: the producer's credential and validated user id."""
    from klients_common.events import CATALOGUE

    producer = CATALOGUE[event_type].producer
    publish(bus_uri(producer), f"{producer}.events", event_type, payload,
            user_id=os.environ["BUS_USER_PREFIX"] + producer)


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Poll ``check`` until it returns true; fail the run naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # not up yet: remember why, for the message if it never comes up
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come up within {timeout:g} s (last error: {last!r})")


def reset_database(service: str, url: str, amqp_uri: str) -> None:
    """Drop every table of ``service``'s database at ``url`` and migrate it (database and its part of the bus,
    declared as its own broker user) from scratch."""
    from klients_common.service_cli import migrate_bus
    from klients_common.settings import nameko_config

    if url.startswith("sqlite:///"):  # the embedded default (the bench's SQLite run): a new file
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
    else:
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    migrate(f"klients_{service}", url)
    migrate_bus(service, {**nameko_config(service), "AMQP_URI": amqp_uri})


def reset_databases() -> None:
    """Reset every service's test database (``reset_database``)."""
    for service in MIGRATED:
        reset_database(service, os.environ[f"{service.upper()}_DATABASE_URL"], bus_uri(service))


class Stack:
    """Starts and stops the processes of the system under test."""

    def __init__(self) -> None:
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = Path(os.environ["KLIENTS_VAR_DIR"]) / "log"
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str, env: dict[str, str] | None = None,
              component: str | None = None) -> subprocess.Popen[bytes]:
        """Start one process (``env`` added to ours; on the bus as ``component``), its output in
        var/test/log/NAME.log."""
        bus = {"AMQP_URI": bus_uri(component)} if component else {}
        with (self.logs / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                                    env={**os.environ, **bus, **(env or {})})
        self.procs[name] = proc
        return proc

    def start_providers(self) -> None:
        """Start the eID simulators and point identity at them (trust anchors, bank certificates)."""
        from klients_simulators.devsetup import fetch_env, merchants_env

        folder = Path(os.environ["KLIENTS_VAR_DIR"]) / "providers"
        os.environ.update(merchants_env(folder, os.environ["IDENTITY_ISSUER"]))
        sims = {"smartid": "SIM_SMARTID_BIND", "eparaksts": "SIM_EPARAKSTS_BIND", "banks": "SIM_BANKS_BIND"}
        for name, bind in sims.items():
            self.start(f"{name}-simulator", str(BIN / "klients-simulators"), name, "--bind", os.environ[bind])
        for bind in sims.values():
            wait_until(bind, lambda b=bind: socket.create_connection(
                tuple(os.environ[b].split(":")), timeout=1).close() is None)  # type: ignore[arg-type]
        os.environ.update(fetch_env(folder, f"http://{os.environ['SIM_SMARTID_BIND']}",
                                    f"http://{os.environ['SIM_BANKS_BIND']}"))

    def start_identity(self) -> None:
        """Start identity and wait until it serves its JWKS."""
        self.start("identity", str(BIN / "klients-identity"), "serve", "--workers",
                   os.environ.get("IDENTITY_WORKERS", "1"), component="identity")
        issuer = os.environ["IDENTITY_ISSUER"]
        wait_until("identity", lambda: requests.get(f"{issuer}/jwks.json", timeout=1).ok)

    def start_service(self, name: str, rpc: RpcClient) -> None:
        """Start a nameko service and wait until it answers RPC."""
        self.start(f"{name}-service" if name == "identity" else name, str(BIN / f"klients-{name}"), "run",
                   component=name)
        wait_until(name, lambda: rpc.call(name, "ping", timeout=1) == "pong")

    def start_portal(self) -> None:
        """Start the portal (its session table made afresh) and wait until it answers."""
        url = os.environ["PORTAL_DATABASE_URL"]
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        migrate("klients_portal", url)
        self.start("portal", str(BIN / "klients-portal"), "serve", "--workers", "2", "--threads", "16")
        wait_until("portal", lambda: requests.get(f"{os.environ['PORTAL_URL']}/healthz", timeout=1).ok)

    def start_smtp(self, port: int, maildir: Path) -> None:
        """Start the local SMTP server."""
        self.start("smtp", sys.executable, str(ROOT / "deploy" / "devsmtp.py"), "--port", str(port),
                   "--maildir", str(maildir))
        wait_until("SMTP", lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None)

    def stop(self, name: str, sig: str = "TERM") -> None:
        """Stop one process (TERM, or KILL to simulate a crash)."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        proc.kill() if sig == "KILL" else proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def stop_all(self) -> None:
        """Stop everything this stack started."""
        for name in list(self.procs):
            self.stop(name)


def start_system(rpc: RpcClient, *, fresh_bus: bool = True) -> Stack:
    """Fresh databases with the demo data and a signing key, then identity and every nameko service."""
    from sqlalchemy.orm import sessionmaker

    from klients_billing.demo import seed as seed_billing
    from klients_common.db import transaction
    from klients_identity.oauth.keys import ensure_key
    from klients_identity.oauth.registration import ensure_portal_client, ensure_portal_web_client
    from klients_identity.settings import Settings
    from klients_metering.demo import seed as seed_metering

    if fresh_bus:
        reset_bus()
    reset_databases()
    logs = Path(os.environ["KLIENTS_VAR_DIR"]) / "log"
    for old in logs.glob("*.log"):  # each run's logs start empty (the SMTP server, already running, keeps its)
        if old.name != "smtp.log":
            old.unlink()
    for service, seed in (("billing", seed_billing), ("metering", seed_metering), ("identity", None)):
        factory = sessionmaker(make_engine(os.environ[f"{service.upper()}_DATABASE_URL"]))
        with transaction(factory) as session:
            if seed is None:
                ensure_key(session, token_ttl=300)
                ensure_portal_client(session, Settings.from_env())
                ensure_portal_web_client(session, Settings.from_env())
            else:
                seed(session)
    running = Stack()
    try:
        running.start_providers()
        running.start_identity()
        running.start("payments-simulator", str(BIN / "klients-simulators"), "payments",
                      "--bind", os.environ["SIM_PAYMENTS_BIND"])
        for service in SERVICES:
            running.start_service(service, rpc)
        running.start("gateway", str(BIN / "klients-gateway"), "serve", "--workers", "2", "--threads", "16",
                      component="gateway")
        internal = "http://" + os.environ["GATEWAY_INTERNAL_BIND"]  # /readyz is served on the internal port only
        wait_until("gateway", lambda: requests.get(f"{internal}/readyz", timeout=2).ok)
        running.start_portal()
        wait_until("payments simulator",
                   lambda: requests.get(f"http://{os.environ['SIM_PAYMENTS_BIND']}/v1/payments/x", timeout=2)
                   .status_code == 404)
    except BaseException:
        running.stop_all()
        raise
    return running


def mint_token(grants: dict[str, Any], *, subject: str = "person-1",
               acr: str = "http://eidas.europa.eu/LoA/high", audience: str = "klients-api", ttl: int = 300,
               **kwargs: Any) -> str:
    """Mint an access token with identity's own code and keys: grants map a contract to a role, to
    ``("subuser", level)``, or to a ``klients_common.grants.Grant`` (any rights, an end date)."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.grants import Grant, Role, SubuserLevel, rights_for
    from klients_identity.oauth.tokens import issue_access_token

    grant_list = []
    for contract, spec in grants.items():
        if isinstance(spec, Grant):
            grant_list.append(spec)
            continue
        role, level = (spec, None) if isinstance(spec, str) else spec
        grant_list.append(Grant(contract, Role(role), rights_for(Role(role), SubuserLevel(level) if level else None)))
    session = sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))()
    try:
        kwargs.setdefault("client_id", "klients-portal")
        return issue_access_token(session, issuer=os.environ["IDENTITY_ISSUER"], audience=audience, subject=subject,
                                  grants=grant_list, acr=acr, amr=["mca"], ttl=ttl, **kwargs)
    finally:
        session.close()


def register_contract(*, personal_code: str, holder_name: str = "Jānis Bērziņš",
                      email: str | None = "holder@example.lv", prefix: str = "T") -> Any:
    """Put a contract of its own (unique number) held by ``personal_code`` in billing's client register."""
    import uuid
    from datetime import date
    from decimal import Decimal

    from sqlalchemy.orm import sessionmaker

    from klients_billing.models import Contract, ContractHolder

    session = sessionmaker(make_engine(os.environ["BILLING_DATABASE_URL"]), expire_on_commit=False)()
    try:
        contract = Contract(number=f"{prefix}-{uuid.uuid4().hex[:10].upper()}", holder_name=holder_name,
                            holder_personal_code=personal_code, supply_address="Rūpniecības iela 3, Jelgava",
                            email=email, status="active", start_date=date(2020, 1, 1), credit=Decimal("0.00"))
        session.add(contract)
        session.flush()
        session.add(ContractHolder(contract_id=contract.id, holder_name=holder_name,
                                   holder_personal_code=personal_code, since=date(2020, 1, 1)))
        session.commit()
        return contract
    finally:
        session.close()


def random_personal_code(*, new_format: bool = False) -> str:
    """Return a valid personal code nobody in the demo data has (tests must not share persons)."""
    import random

    from klients_common.personal_code import WEIGHTS

    while True:
        if new_format:
            digits = "3" + str(random.randint(2, 9)) + "".join(random.choices("0123456789", k=9))
            return f"{digits[:6]}-{digits[6:]}"
        digits = f"{random.randint(1, 28):02d}{random.randint(1, 12):02d}{random.randint(50, 99):02d}1" + \
            "".join(random.choices("0123456789", k=3))
        check = (1101 - sum(int(d) * w for d, w in zip(digits, WEIGHTS, strict=False))) % 11
        if check < 10:
            return f"{digits[:6]}-{digits[6:]}{check}"


def rpc_ready(rpc: RpcClient, service: str) -> bool:
    """Return whether ``service`` answers ``ping``."""
    try:
        return bool(rpc.call(service, "ping", timeout=1) == "pong")
    except ServiceUnavailable:
        return False


def identity_session() -> Any:
    """Return a transaction on identity's test database."""
    from sqlalchemy.orm import sessionmaker

    from klients_common.db import transaction

    return transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"])))


HEADER = "number,holder_name,holder_personal_code,supply_address,email,status,start_date,end_date\n"


def run_import(tmp_path: Path, text: str, suffix: str = ".csv") -> subprocess.CompletedProcess[str]:
    """Import a client register (CSV under ``HEADER``, or JSON) with billing's command line."""
    path = tmp_path / f"register{suffix}"
    path.write_text(text, encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "klients_billing.cli", "import-register", str(path)],
                          capture_output=True, text=True, check=False)
