"""Database plumbing shared by services: engines, a worker-scoped session for nameko, migrations.

SQLite (``var/<service>.db``) is the zero-configuration default; PostgreSQL is what production and the
test suite use (``<SERVICE>_DATABASE_URL=postgresql+psycopg2://...``). Under eventlet, psycopg2 is made
cooperative by ``klients_common.green.patch`` so queries of different workers overlap.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC: SQLite hands back naive datetimes, and everything stored is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# SQLite under concurrent writers (several gunicorn workers and threads, nameko workers): readers never wait
# for the writer (WAL); a writer waits for the one before it up to 30 s instead of failing at once; a commit
# does not fsync the log (synchronous=NORMAL: in WAL mode a power cut may lose the last commits, never the
# database), which keeps each write lock held for microseconds rather than a disk flush.
SQLITE_PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=30000",
                  "PRAGMA foreign_keys=ON")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Return an engine tuned for the backend behind ``url`` (every service's engine comes from here)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # A connection is pinged as it leaves the pool: after a PostgreSQL restart no request fails on a
    # connection the server dropped (the bench's profile puts the ping at about 6 % of an RPC's CPU; losing a
    # request on every database restart costs more). Connections older than half an hour are replaced.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_recycle", 1800)
    return create_engine(url, **kwargs)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session that commits on success and rolls back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def migrate(package: str, url: str, revision: str = "head") -> None:
    """Run ``package``'s Alembic migrations (folder ``<package>/migrations``) up to ``revision``."""
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(config, revision)


def run_migrations(metadata: Any) -> None:
    """Body of every service's ``migrations/env.py``: migrate ``metadata`` online with the configured URL."""
    from alembic import context

    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
