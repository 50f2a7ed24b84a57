"""Shared fixtures: the real system (identity, nameko services, SMTP) on real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import Stack, load_env, mint_token, reset_bus, start_system

load_env()
pytest_plugins = ["tests.support.browser", "tests.support.keycloak"]  # chromium, portal, page; staff, fronted

from sqlalchemy.orm import sessionmaker  # noqa: E402 - after the environment is set

from klients_common.db import make_engine  # noqa: E402
from klients_common.rpc import RpcClient  # noqa: E402


@pytest.fixture(scope="session")
def rpc(stack: Stack) -> Iterator[RpcClient]:
    """A persistent RPC client on the test vhost (what the gateway uses)."""
    client = RpcClient(os.environ["AMQP_URI"], timeout=5)
    yield client
    client.close()


@pytest.fixture(scope="session")
def mint(stack: Stack) -> Callable[..., str]:
    """Mint access tokens with identity's own code and keys: mint({"LVG-100001": "owner"})."""
    return lambda grants=None, **kwargs: mint_token(grants or {}, **kwargs)


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Any:
    """The gateway app (in process, real RPC client over RabbitMQ) and its test client."""
    from klients_gateway import create_app

    app = create_app()
    yield app.test_client()
    app.extensions["klients_rpc"].close()


class SmtpServer:
    """The local SMTP server (deploy/devsmtp.py) as a process tests can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = int(os.environ["SMTP_PORT"])
        self.process = Stack()

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.process.start_smtp(self.port, self.folder)

    def stop(self) -> None:
        """Stop it (connections are refused until it starts again)."""
        self.process.stop_all()


@pytest.fixture(scope="session")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    """A running local SMTP server."""
    server = SmtpServer(tmp_path_factory.mktemp("mail"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def maildir(smtp: SmtpServer) -> Path:
    """The folder the local SMTP server keeps every mail in."""
    return smtp.folder



@pytest.fixture(scope="session")
def metering_sessions(stack: Stack) -> Any:
    """A session factory on metering's test database."""
    return sessionmaker(make_engine(os.environ["METERING_DATABASE_URL"]), expire_on_commit=False)


@pytest.fixture
def new_meter(metering_sessions: Any) -> Callable[..., Any]:
    """Create a meter on a contract of its own (unique per call), with readings: (day, value[, source])."""
    import uuid
    from datetime import UTC, date, datetime

    from klients_metering.models import Meter, Reading

    def _new(readings: list[tuple[date, int] | tuple[date, int, str]] = (), *, digits: int = 5,
             installed_on: date = date(2020, 1, 1), install_reading: int = 0, contract: str | None = None) -> Meter:
        with metering_sessions() as session:
            meter = Meter(contract=contract or f"T-{uuid.uuid4().hex[:10].upper()}",
                          serial_number=f"S-{uuid.uuid4().hex[:12].upper()}", meter_type="G4", digits=digits,
                          unit="m3", installed_on=installed_on, install_reading=install_reading)
            session.add(meter)
            session.flush()
            for day, value, *source in readings:
                session.add(Reading(meter_id=meter.id, value=value, read_on=day, period=f"{day:%Y-%m}",
                                    source=source[0] if source else "customer", rollover=False, flagged=False,
                                    submitted_at=datetime(day.year, day.month, day.day, 12, tzinfo=UTC)))
            session.commit()
            return meter

    return _new


@pytest.fixture(scope="session")
def billing_sessions(stack: Stack) -> Any:
    """A session factory on billing's test database."""
    return sessionmaker(make_engine(os.environ["BILLING_DATABASE_URL"]), expire_on_commit=False)


@pytest.fixture
def new_contract(billing_sessions: Any) -> Callable[..., Any]:
    """Create a contract of its own in the register (unique number per call)."""
    from tests.support.stack import random_personal_code, register_contract

    def _new(*, email: str | None = "holder@example.lv", personal_code: str | None = None,
             holder_name: str = "Jānis Bērziņš") -> Any:
        return register_contract(personal_code=personal_code or random_personal_code(), holder_name=holder_name,
                                 email=email)

    return _new


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    """The gateway as a real HTTP server (for callbacks from the payment simulator)."""
    return "http://" + os.environ["GATEWAY_BIND"]


@pytest.fixture(scope="session")
def notifications_sessions(stack: Stack) -> Any:
    """A session factory on notifications' test database."""
    return sessionmaker(make_engine(os.environ["NOTIFICATIONS_DATABASE_URL"]), expire_on_commit=False)


@pytest.fixture(scope="session")
def stack(smtp: SmtpServer) -> Iterator[Stack]:
    """Migrate fresh databases, seed the demo data, and start identity and every nameko service (after
    the SMTP server, so the demo's e-mails go out at once instead of waiting for retries)."""
    reset_bus()  # before any client connects: the vhost is deleted and made again
    rpc = RpcClient(os.environ["AMQP_URI"], timeout=10)
    running = start_system(rpc, fresh_bus=False)
    try:
        yield running
    finally:
        rpc.close()
        running.stop_all()
