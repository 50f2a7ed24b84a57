"""The web app's database session: one per request, closed when the request ends (``app``)."""

from __future__ import annotations

from flask import current_app, g
from sqlalchemy.orm import Session


def db() -> Session:
    """Return this request's database session."""
    if "db" not in g:
        g.db = current_app.extensions["klients_db"]()
    return g.db
