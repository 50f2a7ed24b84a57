"""Klients portal: the client portal, a server-side web app (backend for frontend) on the gateway's public
API. See ``docs/portal.md``."""

from __future__ import annotations

from .app import create_app


def serve_app() -> object:
    """The app for gunicorn (``klients-portal serve``)."""
    return create_app()


__all__ = ["create_app", "serve_app"]
