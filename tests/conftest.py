"""Shared fixtures: the real system (identity, nameko services, SMTP) on real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import ROOT, SERVICES, Stack, load_env, reset_databases

load_env()

from sqlalchemy.orm import Session, sessionmaker  # noqa: E402 - after the environment is set

from klients_common.db import make_engine, transaction  # noqa: E402
from klients_common.grants import Grant, Role, SubuserLevel, rights_for  # noqa: E402
from klients_common.rpc import RpcClient  # noqa: E402

LOA_LOW = "http://eidas.europa.eu/LoA/low"
LOA_HIGH = "http://eidas.europa.eu/LoA/high"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Migrate fresh databases, seed the demo data, and start identity and every nameko service."""
    from klients_billing.demo import seed as seed_billing
    from klients_metering.demo import seed as seed_metering

    reset_databases()
    for service, seed in (("billing", seed_billing), ("metering", seed_metering)):
        with transaction(sessionmaker(make_engine(os.environ[f"{service.upper()}_DATABASE_URL"]))) as session:
            seed(session)
    with identity_session() as session:
        from klients_identity.keys import ensure_key

        ensure_key(session, token_ttl=300)
    running = Stack()
    rpc = RpcClient(os.environ["AMQP_URI"], timeout=10)
    try:
        running.start_identity()
        for service in SERVICES:
            running.start_service(service, rpc)
        yield running
    finally:
        rpc.close()
        running.stop_all()


@pytest.fixture(scope="session")
def rpc(stack: Stack) -> Iterator[RpcClient]:
    """A persistent RPC client on the test vhost (what the gateway uses)."""
    client = RpcClient(os.environ["AMQP_URI"], timeout=5)
    yield client
    client.close()


def identity_session() -> Any:
    """Return a transaction on identity's test database."""
    return transaction(sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"])))


@pytest.fixture(scope="session")
def mint(stack: Stack) -> Callable[..., str]:
    """Mint access tokens with identity's own code and keys: mint(grants={"LVG-100001": "owner"})."""
    from klients_identity.tokens import issue_access_token

    factory = sessionmaker(make_engine(os.environ["IDENTITY_DATABASE_URL"]))

    def _mint(grants: dict[str, str | tuple[str, str]] | None = None, *, subject: str = "person-1",
              acr: str = LOA_HIGH, audience: str = "klients-api", ttl: int = 300, **kwargs: Any) -> str:
        grant_list = []
        for contract, spec in (grants or {}).items():
            role, level = (spec, None) if isinstance(spec, str) else spec
            grant_list.append(Grant(contract, Role(role), rights_for(Role(role), level and SubuserLevel(level))))
        session: Session = factory()
        try:
            return issue_access_token(session, issuer=os.environ["IDENTITY_ISSUER"], audience=audience,
                                      subject=subject, client_id="klients-portal", grants=grant_list, acr=acr,
                                      amr=["mca"], ttl=ttl, **kwargs)
        finally:
            session.close()

    return _mint


@pytest.fixture(scope="session")
def gateway(stack: Stack) -> Any:
    """The gateway app (in process, real RPC client over RabbitMQ) and its test client."""
    from klients_gateway import create_app

    app = create_app()
    yield app.test_client()
    app.extensions["klients_rpc"].close()


@pytest.fixture(scope="session")
def maildir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A running local SMTP server; yields the folder its mail lands in."""
    folder = tmp_path_factory.mktemp("mail")
    smtp = Stack()
    smtp.start_smtp(int(os.environ["SMTP_PORT"]), folder)
    yield folder
    smtp.stop_all()


__all__ = ["LOA_HIGH", "LOA_LOW", "ROOT"]
