"""Database plumbing shared by services: engines, a worker-scoped session for nameko, migrations.

SQLite (``var/<service>.db``) is the zero-configuration default; PostgreSQL is what production and the
test suite use (``<SERVICE>_DATABASE_URL=postgresql+psycopg2://...``). Under eventlet, psycopg2 is made
cooperative by ``klients_common.green.patch`` so queries of different workers overlap.
"""

from __future__ import annotations

import collections
import fcntl
import os
import select
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, event, exc
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
WRITER_WAIT_SECONDS = 30.0  # as long as the busy timeout: then "database is locked", as SQLite would say


# SQLite lets one writer in at a time; a writer that finds the database locked sleeps in SQLite's busy handler
# (1, 2, 5 … 50, then 100 ms at a time) and polls again, so under 16 concurrent writers a write waited up to
# 100 ms after the lock was already free (the bench's refresh p99 of 1.15 s). Writers now queue instead: a
# transaction's first write statement waits for its turn at a first-come-first-served lock of the process and
# an flock(2) on ``<database>-writer.lock`` shared by every process on the file (the kernel wakes the next one
# as soon as the holder lets go), then opens the transaction with ``BEGIN IMMEDIATE`` and holds both until it
# commits or rolls back. Reads before the first write run outside a transaction (as the sqlite3 module has
# always done: no stale snapshot to upgrade, so no SQLITE_BUSY_SNAPSHOT), and WAL readers never wait.
class _WriterQueue:
    """A first-come-first-served lock of this process, and the file lock every process on the database takes."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.cond = threading.Condition()
        self.waiting: collections.deque[object] = collections.deque()
        self.held = False
        self.fd: int | None = None
        self.pid = os.getpid()

    def acquire(self) -> None:
        me = object()
        with self.cond:
            self.waiting.append(me)
            if not self.cond.wait_for(lambda: not self.held and self.waiting[0] is me, WRITER_WAIT_SECONDS):
                self.waiting.remove(me)
                self.cond.notify_all()
                raise sqlite3.OperationalError("database is locked (waited for the writer before)")
            self.waiting.popleft()
            self.held = True
        try:
            if self.path is not None:
                fcntl.flock(self._fd(), fcntl.LOCK_EX)
        except BaseException:
            self._let_go()
            raise

    def release(self) -> None:
        if self.path is not None and self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self._let_go()

    def _let_go(self) -> None:
        with self.cond:
            self.held = False
            self.cond.notify_all()

    def _fd(self) -> int:
        if self.fd is None or self.pid != os.getpid():  # after a fork: a lock file of this process's own
            self.fd, self.pid = os.open(f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        return self.fd


_queues: dict[str, _WriterQueue] = {}
_queues_lock = threading.Lock()
_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT")  # a savepoint opens a write (begin_nested)


def _writer_queue(database: str | None) -> _WriterQueue:
    path = os.path.abspath(database) if database and database != ":memory:" else None
    with _queues_lock:
        return _queues.setdefault(path or f"memory:{id(threading.current_thread())}", _WriterQueue(path))


class _QueuedWriterConnection(sqlite3.Connection):
    """An sqlite3 connection (autocommit at the driver) whose write transactions queue (``_WriterQueue``)."""

    queue: _WriterQueue
    holding = False

    def cursor(self, factory: Any = None) -> sqlite3.Cursor:
        return super().cursor(factory or _QueuedWriterCursor)

    def _before(self, statement: str) -> None:
        if self.holding or self.in_transaction or not statement.lstrip()[:9].upper().startswith(_WRITES):
            return
        self.queue.acquire()
        self.holding = True
        try:
            super().execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self.holding:
            self.holding = False
            self.queue.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


class _QueuedWriterCursor(sqlite3.Cursor):
    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]
        return super().execute(sql, parameters)

    def executemany(self, sql: str, seq_of_parameters: Any) -> sqlite3.Cursor:
        self.connection._before(sql)  # type: ignore[attr-defined]
        return super().executemany(sql, seq_of_parameters)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Return an engine tuned for the backend behind ``url`` (every service's engine comes from here)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30, "isolation_level": None,
                                                  "factory": _QueuedWriterConnection}, **kwargs)
        queue = _writer_queue(engine.url.database)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.queue = queue
            cursor = dbapi_conn.cursor()
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            cursor.close()

        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # A connection is checked as it leaves the pool, so that after a PostgreSQL restart no request fails on a
    # connection the server dropped (``_check_out``); connections older than half an hour are replaced.
    kwargs.setdefault("pool_recycle", 1800)
    engine = create_engine(url, **kwargs)
    if not kwargs.get("pool_pre_ping"):
        event.listen(engine, "checkin", _checked_in)
        event.listen(engine, "checkout", _checked_out(engine))
    return engine


PING_AFTER_IDLE = 10.0  # seconds in the pool after which a connection is pinged rather than checked locally


def _checked_in(_dbapi_conn: Any, record: Any) -> None:
    record.info["klients_idle_since"] = time.monotonic()


def _checked_out(engine: Engine) -> Any:
    """Return the pool's checkout check. A connection back in the pool within ``PING_AFTER_IDLE`` seconds is checked
    without a round trip: a server that ended it (a restart, ``pg_terminate_backend``, an idle timeout) has sent
    its notice and closed the socket, so the socket is readable or the driver knows it closed. One idle longer
    (what a firewall or NAT may have dropped without a word) is pinged with ``SELECT 1``, as ``pool_pre_ping`` did
    for every checkout: that round trip was a second one on every token refresh. Either way a dead connection is
    replaced before anything runs on it (the pool retries the checkout on a new one)."""

    def check(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("klients_idle_since")
        if idle_since is None:
            return  # a new connection
        if dbapi_conn.closed:
            raise exc.DisconnectionError("the connection was closed")
        if time.monotonic() - idle_since > PING_AFTER_IDLE:
            try:
                engine.dialect.do_ping(dbapi_conn)
            except engine.dialect.loaded_dbapi.Error as error:
                raise exc.DisconnectionError(str(error)) from error
        elif select.select([dbapi_conn.fileno()], [], [], 0)[0]:
            raise exc.DisconnectionError("the server ended the connection while it was in the pool")

    return check


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
