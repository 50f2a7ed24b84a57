"""The portal's Flask app: settings, the session store, the OIDC and API clients, the response hardening
(``klients_common.web``: CSP without inline script or style, no framing, no-store, body limits, 303 after
POST), the cookie, CSRF on every form, the language, and pages for every error."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

import requests
from flask import Flask, Response, g, render_template, request
from limits import parse as parse_limit
from limits.strategies import SlidingWindowCounterRateLimiter
from sqlalchemy.orm import sessionmaker
from urllib3.util.retry import Retry
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from klients_common.db import make_engine
from klients_common.ratelimit import SqlStorage
from klients_common.web import harden

from . import i18n
from .api import Api, ServiceUnavailable, SessionExpired
from .crypto import TokenCipher
from .oidc import IssuerError, OidcClient
from .settings import Settings
from .store import COOKIE, BrowserSession, Store

log = logging.getLogger(__name__)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the portal."""
    settings = settings or Settings.from_env()
    app = Flask(__name__)
    app.config["PORTAL"] = settings
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies, x_host=settings.trusted_proxies)
    http = requests.Session()
    # A kept-alive connection the gateway closed meanwhile is answered with a reset: a read (GET) is retried
    # once on a new connection; a POST is not (it may have been carried out).
    retry = Retry(total=2, connect=2, read=1, status=0, other=0, raise_on_status=False,
                  allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}))
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=64, max_retries=retry)
    http.mount("http://", adapter)
    http.mount("https://", adapter)
    engine = make_engine(settings.database_url)
    store = Store(sessionmaker(engine, expire_on_commit=False),
                  idle=timedelta(minutes=settings.session_idle_minutes),
                  lifetime=timedelta(hours=settings.session_hours), cipher=TokenCipher(settings.session_keys))
    oidc = OidcClient(settings.issuer, settings.client_id, settings.client_secret, settings.redirect_uri,
                      timeout=settings.api_timeout, http=http, scope=settings.scope, idp_hint=settings.idp_hint)
    app.extensions["klients_portal_store"] = store
    app.extensions["klients_portal_oidc"] = oidc
    app.extensions["klients_portal_api"] = Api(settings.api_url, settings.api_timeout, http, oidc, store)
    # Counted in the portal's database: every worker and replica shares one allowance per address.
    app.extensions["klients_portal_limiter"] = (SlidingWindowCounterRateLimiter(SqlStorage(engine=engine)),
                                                parse_limit(settings.rate_limit_login))
    # The logout form posts to the portal, which then redirects to the issuer's end-session endpoint; the
    # payment form's redirect goes to the provider: browsers check such redirects against form-action.
    harden(app, max_body=settings.max_request_bytes, csp=CSP, referrer_policy="same-origin",
           csp_sources=lambda: {"form-action": _form_targets(app)})

    app.before_request(_load_session)
    app.after_request(_save_session)
    app.jinja_env.globals.update(t=i18n.text, t_or=i18n.text_or, csrf_token=csrf_token, fmt_money=i18n.money,
                                 fmt_date=i18n.date, fmt_datetime=i18n.datetime_, other_lang=i18n.other,
                                 interval_label=_interval_label, window_days=i18n.window_days)
    app.context_processor(lambda: {"lang": g.get("lang", i18n.DEFAULT), "signed_in": _signed_in(),
                                   "person_name": _person_name()})
    app.register_error_handler(SessionExpired, _expired)
    app.register_error_handler(ServiceUnavailable, _unavailable)
    app.register_error_handler(IssuerError, _unavailable)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)

    from . import manage  # noqa: F401 - its pages join the blueprint
    from .views import pages

    app.register_blueprint(pages)
    return app


def _interval_label(start: str, group_by: str) -> str:
    from .chart import label

    return label(str(start), group_by)


def _form_targets(app: Flask) -> list[str]:
    from .views import origin

    settings: Settings = app.config["PORTAL"]
    return sorted({o for o in (origin(settings.issuer), *map(origin, settings.payment_origins)) if o})


# --- the session of each request ---------------------------------------------------------------------------

def store() -> Store:
    """The session store."""
    from flask import current_app

    return current_app.extensions["klients_portal_store"]  # type: ignore[no-any-return]


def _load_session() -> None:
    if request.endpoint == "static":  # the stylesheet needs no session (nor a database round trip)
        g.portal_session, g.session_expired, g.lang = None, False, i18n.DEFAULT
        return
    found = store().load(request.cookies.get(COOKIE))
    g.portal_session = found if found is not None and not found.expired else None
    g.session_expired = bool(found is not None and found.expired)
    g.lang = i18n.pick(g.portal_session.data.get("lang") if g.portal_session else None)


def current(create: bool = True) -> BrowserSession | None:
    """The request's session, made when ``create`` and there is none."""
    if g.get("portal_session") is None and create:
        g.portal_session = store().create({"lang": g.get("lang", i18n.DEFAULT)})
    return g.get("portal_session")  # type: ignore[no-any-return]


def _save_session(response: Response) -> Response:
    session: BrowserSession | None = g.get("portal_session")
    settings: Settings = g.get("settings_override") or _settings()
    if session is not None and not session.removed:
        if session.dirty or session.new:
            store().save(session)
        response.set_cookie(COOKIE, session.raw_id, httponly=True, samesite="Lax", secure=settings.cookie_secure,
                            path="/", max_age=settings.session_hours * 3600)
    elif g.get("clear_cookie") or g.get("session_expired") or (session is not None and session.removed):
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax", secure=settings.cookie_secure)
    return response


def _settings() -> Settings:
    from flask import current_app

    return current_app.config["PORTAL"]  # type: ignore[no-any-return]


def _signed_in() -> bool:
    session = g.get("portal_session")
    return bool(session is not None and session.logged_in)


def _person_name() -> str:
    session = g.get("portal_session")
    return str(session.data.get("name", "")) if session is not None and session.logged_in else ""


# --- CSRF ---------------------------------------------------------------------------------------------------

def csrf_token() -> str:
    """The session's CSRF secret (made on first use), for a form's hidden ``csrf`` field."""
    session = current()
    assert session is not None
    token = session.data.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session.set("csrf", token)
    return str(token)


def check_csrf() -> None:
    """Refuse (400, a page) a form post whose ``csrf`` field is not the session's."""
    session = g.get("portal_session")
    sent = request.form.get("csrf", "")
    expected = session.data.get("csrf", "") if session is not None else ""
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        raise CsrfRefused


class CsrfRefused(HTTPException):
    """A form post without the session's CSRF token."""

    code = 400
    description = "csrf"


# --- pages for errors ---------------------------------------------------------------------------------------

def page(template: str, status: int = 200, **context: Any) -> Response:
    """Render a page with its status."""
    return Response(render_template(template, **context), status=status, mimetype="text/html")


def _expired(_error: Exception) -> Response:
    session = g.get("portal_session")
    if session is not None:
        store().delete(session)
        g.portal_session = None
    g.clear_cookie = True
    return page("expired.html", 401, next=request.full_path.rstrip("?") if request.method == "GET" else "/")


def _unavailable(error: Exception) -> Response:
    log.warning("unavailable: %s", error)
    return page("error.html", 503, title=i18n.text("unavailable_title"), message=i18n.text("unavailable_text"))


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    key = {400: "bad_request", 404: "not_found", 405: "bad_request", 413: "too_large", 429: "too_many"}.get(
        status, "bad_request")
    if isinstance(error, CsrfRefused):
        key = "csrf"
    response = page("error.html", status, title=i18n.text(f"{key}_title"), message=i18n.text(f"{key}_text"))
    if status == 429 and getattr(error, "retry_after", None):
        response.headers["Retry-After"] = str(error.retry_after)  # type: ignore[attr-defined]
    return response


def _crash(error: Exception) -> Response:
    log.exception("unexpected error", exc_info=error)
    return page("error.html", 500, title=i18n.text("crash_title"), message=i18n.text("crash_text"))
