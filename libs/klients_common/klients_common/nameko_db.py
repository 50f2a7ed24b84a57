"""Nameko dependencies for the database: a SQLAlchemy session per worker (``Database``, committed by the
worker), and read-only Core statements without a session or a transaction (``Reads``)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from nameko.extensions import DependencyProvider
from sqlalchemy import Executable, Row
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .db import make_engine


class Database(DependencyProvider):
    """``self.db`` in a worker is a Session; it is closed (rolled back if uncommitted) after the worker."""

    def setup(self) -> None:
        """Create the engine once per container from ``DATABASE_URL``."""
        self.engine = make_engine(self.container.config["DATABASE_URL"])
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
    it, no ping before it. A connection the server dropped (PostgreSQL restarted) fails with a disconnect, which
    invalidates the pool; the statement is then run once more on a fresh connection (a read is safe to repeat),
    so a database restart costs no read, as ``make_engine``'s ping on checkout ensures for the sessions."""

    def __init__(self, url: str) -> None:
        # The pool as large as the session engine's (``make_engine``: at least nameko's ten workers): a smaller one
        # opened and closed an overflow connection per read under load (a PostgreSQL backend each).
        self.engine = make_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=False)

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
        """Create the reader's engine once per container."""
        self.reader = Reader(self.container.config["DATABASE_URL"])

    def stop(self) -> None:
        """Release pooled connections."""
        self.reader.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Reader:
        """Return the container's reader (stateless: shared by every worker)."""
        return self.reader
