"""Identity's use of the shared response hardening (``klients_common.web``): a strict Content-Security-Policy
on its pages (no inline script or style: they live in ``static/``), no framing, no referrer, nothing
cached but the public discovery document and JWKS, request bodies of at most ``MAX_REQUEST_BYTES`` (the
operators' upload form: the attachment's limit), and a page (not an error document) for a body too large.

``form-action`` names where identity's forms may lead: identity itself, and, because browsers check the
redirects that follow a form post too, the registered clients' redirect and post-logout URIs (a login ends
with a redirect to the client), the banks' login pages (the bank form posts there), eParaksts and Keycloak
(the operators' realm, the Keycloak-fronted broker)."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from klients_common.web import harden

from . import pages
from .models import OAuthClient

log = logging.getLogger(__name__)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def install(app: Flask, *, route_limits: dict[str, int]) -> None:
    """Harden identity's answers and show a page for a request body that is too large (``route_limits``: the
    endpoints allowed a larger body, with their limit)."""
    settings = app.config["SETTINGS"]
    harden(app, max_body=settings.max_request_bytes, csp=CSP, csp_sources=form_targets, route_limits=route_limits)
    app.register_error_handler(RequestEntityTooLarge, _too_large)


def _too_large(_error: Any) -> Any:
    return pages.problem_page(413, "too_large", pages.TEXT[pages.current_lang()]["too_large_text"])


def origin(url: str) -> str | None:
    """Return ``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def form_targets() -> dict[str, list[str]]:
    """Return the CSP sources added to identity's pages: where a form post may end up."""
    settings = current_app.config["SETTINGS"]
    found = [settings.eparaksts_url, settings.keycloak_url]
    found += [bank.get("url", "") for bank in json.loads(settings.banks_json or "[]")]
    origins = {o for o in map(origin, found) if o}
    return {"form-action": sorted(origins | _client_origins())}


def _client_origins() -> set[str]:
    """The origins of every registered client's redirect and post-logout URIs (a few rows: asked per page, in
    a session of its own so that a request's failed transaction cannot spoil it)."""
    found: set[str] = set()
    session = current_app.extensions["klients_db"]()
    try:
        rows = session.execute(select(OAuthClient.redirect_uris, OAuthClient.post_logout_redirect_uris)).all()
    except SQLAlchemyError:
        log.warning("the clients' redirect URIs could not be read; forms may post to identity only")
        return found
    finally:
        session.close()
    for uris, logout_uris in rows:
        found |= {o for o in map(origin, [*(uris or []), *(logout_uris or [])]) if o}
    return found
