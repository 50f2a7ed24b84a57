"""Nameko dependencies for the database: a SQLAlchemy session per worker (``Database``, committed by the
worker), and read-only Core statements without a session or a transaction (``Reads``). Both draw on one engine
(one connection pool) per container: a service's workers need at most one connection each, whichever dependency
they use, and two pools per process held twice the PostgreSQL connections (the bench ran the server out of its
100 slots)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from nameko.extensions import DependencyProvider
from sqlalchemy import Executable, Row
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .db import make_engine


def container_engine(container: Any) -> Engine:
    """Return the container's one engine for ``DATABASE_URL``, created by the first dependency that asks."""
    engines: dict[str, Engine] = container.__dict__.setdefault("klients_engines", {})
    url = container.config["DATABASE_URL"]
    if url not in engines:
        engines[url] = make_engine(url)
    return engines[url]


class Database(DependencyProvider):
    """``self.db`` in a worker is a Session; it is closed (rolled back if uncommitted) after the worker."""

    def setup(self) -> None:
        """Take the container's engine (``container_engine``)."""
        self.engine = container_engine(self.container)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)
        self.sessions: WeakKeyDictionary[Any, Session] = WeakKeyDictionary()

    def stop(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Session:
        """Return a new session for this worker."""
        session = self.session_factory()
        self.sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx: Any) -> None:
        """Close the worker's session."""
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            session.close()


class Reader:
    """Runs one read-only statement on a pooled autocommit connection: no ORM session, no BEGIN/ROLLBACK around
    it. The pool checks a connection as it leaves (``make_engine``); one the server dropped all the same fails
    with a disconnect, which invalidates the pool, and the statement is then run once more on a fresh connection
    (a read is safe to repeat), so a database restart costs no read."""

    def __init__(self, engine: Engine) -> None:
        # The container's pool, its connections in autocommit while a read holds them (set on the driver's
        # connection, no round trip; put back as they were when returned).
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")

    def all(self, statement: Executable, params: dict[str, Any] | None = None) -> list[Row[Any]]:
        """Return every row of ``statement`` with ``params`` bound."""
        try:
            return self._all(statement, params)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            return self._all(statement, params)

    def _all(self, statement: Executable, params: dict[str, Any] | None) -> list[Row[Any]]:
        with self.engine.connect() as connection:
            return list(connection.execute(statement, params).all())


class Reads(DependencyProvider):
    """``self.reads`` in a worker is the container's ``Reader`` (one engine per container, from
    ``DATABASE_URL``): for read-only RPCs, which need neither a session nor a transaction."""

    def setup(self) -> None:
        """Make the reader on the container's engine (``container_engine``)."""
        self.reader = Reader(container_engine(self.container))

    def stop(self) -> None:
        """Release pooled connections."""
        self.reader.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Reader:
        """Return the container's reader (stateless: shared by every worker)."""
        return self.reader
