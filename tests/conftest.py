"""Shared fixtures: the real system (identity, nameko services, SMTP) on real RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stack import Stack, load_env, mint_token, start_system

load_env()

from sqlalchemy.orm import sessionmaker  # noqa: E402 - after the environment is set

from klients_common.db import make_engine, transaction  # noqa: E402
from klients_common.rpc import RpcClient  # noqa: E402


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """Migrate fresh databases, seed the demo data, and start identity and every nameko service."""
    rpc = RpcClient(os.environ["AMQP_URI"], timeout=10)
    running = start_system(rpc)
    try:
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
    """Mint access tokens with identity's own code and keys: mint({"LVG-100001": "owner"})."""
    return lambda grants=None, **kwargs: mint_token(grants or {}, **kwargs)


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

