"""The gateway's public API (``/api/v1``) called with the session's access token, refreshed here when it is
about to expire (or when the gateway refuses it): the browser never sees a token."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import requests
from flask import abort, current_app, g

from .oidc import IssuerError, OidcClient, RefreshFailed
from .store import BrowserSession, Store, Tokens, utcnow

EARLY = timedelta(seconds=30)  # refresh this long before the access token expires
POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="portal-api")  # panels of every thread at once


class SessionExpired(Exception):
    """The login behind the session is gone: the person must log in again."""


class ServiceUnavailable(Exception):
    """The gateway or the issuer is not answering."""


def seg(value: str) -> str:
    """A path segment, escaped."""
    return quote(value, safe="")


class Api:
    """Calls to the gateway on behalf of the current session."""

    def __init__(self, base: str, timeout: float, http: requests.Session, oidc: OidcClient, store: Store) -> None:
        self.base = f"{base}/api/v1"
        self.timeout = timeout
        self.http = http
        self.oidc = oidc
        self.store = store

    def access_token(self, session: BrowserSession, *, force: bool = False) -> str:
        """Return a usable access token, refreshing (once, under the session's lock) when needed."""
        tokens = session.tokens
        if not force and tokens.access_token and tokens.access_expires_at and \
                tokens.access_expires_at - EARLY > utcnow():
            return tokens.access_token
        stale = tokens.access_token
        with self.store.locked_tokens(session) as store:
            fresh = session.tokens
            if fresh.access_token and fresh.access_token != stale and fresh.access_expires_at and \
                    fresh.access_expires_at - EARLY > utcnow():
                return fresh.access_token  # another request refreshed meanwhile
            if not fresh.refresh_token:
                store(Tokens())
                raise SessionExpired
            try:
                new = self.oidc.refresh(fresh.refresh_token)
            except RefreshFailed as exc:
                store(Tokens())
                raise SessionExpired from exc
            except IssuerError as exc:
                raise ServiceUnavailable(str(exc)) from exc
            new.refresh_token = new.refresh_token or fresh.refresh_token
            new.id_token = new.id_token or fresh.id_token
            store(new)
            assert new.access_token
            return new.access_token

    def call(self, method: str, path: str, *, session: BrowserSession | None = None,
             **kwargs: Any) -> requests.Response:
        """Call ``/api/v1<path>``; a 401 gets one refresh and one retry."""
        session = session or g.portal_session
        headers = dict(kwargs.pop("headers", {}) or {})
        for attempt in (0, 1):
            headers["Authorization"] = f"Bearer {self.access_token(session, force=attempt == 1)}"
            try:
                answer = self.http.request(method, self.base + path, headers=headers, timeout=self.timeout,
                                           **kwargs)
            except requests.RequestException as exc:
                raise ServiceUnavailable(str(exc)) from exc
            if answer.status_code != 401:
                if answer.status_code == 503:
                    raise ServiceUnavailable("the API answered 503")
                return answer
        raise SessionExpired

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``."""
        return self.call("GET", path, **kwargs)

    def found(self, path: str, **kwargs: Any) -> requests.Response:
        """GET ``path``; the portal's 404 page when the API has no such thing (or it is not the person's)."""
        answer = self.get(path, **kwargs)
        if answer.status_code == 404:
            abort(404)
        return answer

    def many(self, paths: dict[str, str]) -> dict[str, requests.Response]:
        """GET several paths at once (one gateway call per panel, concurrently)."""
        session = g.portal_session
        self.access_token(session)  # refresh once, before the calls fan out
        futures = {name: POOL.submit(self.get, path, session=session) for name, path in paths.items()}
        return {name: future.result() for name, future in futures.items()}


def api() -> Api:
    """The app's API client."""
    return current_app.extensions["klients_portal_api"]  # type: ignore[no-any-return]
