"""The web app's database session: one per request, closed when the request ends (``app``)."""

from __future__ import annotations

from typing import Any

from flask import current_app, g
from sqlalchemy import Row
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Executable


def db() -> Session:
    """Return this request's database session."""
    if "db" not in g:
        g.db = current_app.extensions["klients_db"]()
    return g.db


AUTOCOMMIT = {"isolation_level": "AUTOCOMMIT"}


def execute_alone(session: Session, statement: Executable, params: dict[str, Any]) -> list[Row[Any]]:
    """Run one statement that is a whole transaction by itself (PostgreSQL: a data-modifying statement whose
    result nothing can refuse afterwards) and return its rows, committed: in autocommit (one round trip, no BEGIN
    and no COMMIT) when the session has not begun a transaction, the session closed after it (its next statement
    begins a transaction of its own); else in the session's transaction, committed."""
    if session.in_transaction():
        rows = session.connection().execute(statement, params).all()
        session.commit()
        return rows
    rows = session.connection(execution_options=AUTOCOMMIT).execute(statement, params).all()
    session.close()
    return rows
