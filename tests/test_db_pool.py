"""PostgreSQL connections leaving the pool (``klients_common.db.make_engine``): one the server ended while it sat
in the pool is replaced before anything runs on it, whether it is checked locally (back within
``PING_AFTER_IDLE`` seconds: no round trip) or pinged (idle longer); a live one is kept."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from klients_common import db
from klients_common.db import make_engine

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture
def engine() -> Iterator[Engine]:
    one = make_engine(os.environ["IDENTITY_DATABASE_URL"], pool_size=1, max_overflow=0)
    yield one
    one.dispose()


def backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def end(pid: int) -> None:
    other = make_engine(os.environ["IDENTITY_DATABASE_URL"], pool_size=1)
    with other.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    other.dispose()
    time.sleep(0.2)  # the backend's notice and close reach the socket


@pytest.mark.parametrize("ping_after", [db.PING_AFTER_IDLE, 0.0], ids=["checked-locally", "pinged"])
def test_a_connection_the_server_ended_in_the_pool_is_replaced_before_use(engine, monkeypatch, ping_after):
    monkeypatch.setattr(db, "PING_AFTER_IDLE", ping_after)
    first = backend(engine)
    assert backend(engine) == first  # a live connection is kept
    end(first)
    assert backend(engine) != first  # no statement failed on the dead one
