"""A nameko dependency giving each worker its own SQLAlchemy session (committed by the worker)."""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from nameko.extensions import DependencyProvider
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
