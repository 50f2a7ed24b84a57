"""The internet-bank pages: the bank chosen, a signed request posted to it, and its signed response parked
and verified against this browser's attempt."""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import redirect, request, session, url_for
from flask.typing import ResponseReturnValue

from klients_common.digests import secret_digest

from .. import pages
from ..connectors.banklink import response_fields
from ..connectors.base import LoginFailed
from ..db import db
from ..limits import limiter, login_limit
from ..models import BankReturn, as_utc, utcnow
from .providers import bank, bank_configs
from .signin import failed
from .strong import finish_strong_login


def bank_choose() -> ResponseReturnValue:
    """Show the configured banks."""
    return pages.render("banks.html", banks=list(bank_configs().values()))


@limiter.limit(login_limit)
def bank_start(bank_id: str) -> ResponseReturnValue:
    """Send the browser to the bank with a signed request (an auto-submitting form)."""
    pages.check_csrf()
    link = bank(bank_id)
    if link is None:
        return pages.problem_page(404, "failed", "unknown bank")
    outgoing = link.build_request(return_url=url_for("login.bank_return", bank_id=bank_id, _external=True),
                                  lang=pages.current_lang())
    session["bank_attempt"] = {"bank": bank_id, "nonce": outgoing.nonce}
    return pages.render("autosubmit.html", action=outgoing.url, fields=outgoing.fields)


@limiter.limit(login_limit)
def bank_return(bank_id: str) -> ResponseReturnValue:
    """Park the bank's response and continue on a same-site redirect that carries the session cookie."""
    if bank_id not in bank_configs():
        return pages.problem_page(404, "failed", "unknown bank")
    key = secrets.token_urlsafe(32)
    db().add(BankReturn(key_hash=secret_digest(key), bank_id=bank_id,
                        fields=response_fields(request.values), expires_at=utcnow() + timedelta(minutes=5)))
    db().commit()
    return redirect(url_for("login.bank_done", bank_id=bank_id, r=key), code=303)


def bank_done(bank_id: str) -> ResponseReturnValue:
    """Verify the parked bank response against this browser's attempt; finish the login."""
    row = db().get(BankReturn, secret_digest(request.args.get("r", "")))
    attempt = session.pop("bank_attempt", None)
    link = bank(bank_id)
    if row is None or link is None or attempt is None or attempt.get("bank") != bank_id or row.bank_id != bank_id \
            or as_utc(row.expires_at) < utcnow():
        return pages.problem_page(400, "failed", pages.TEXT[pages.current_lang()]["expired"])
    fields = dict(row.fields)
    db().delete(row)
    try:
        identity = link.verify_response(fields, expected_nonce=attempt["nonce"])
    except LoginFailed as error:
        db().commit()
        return failed(error, url_for("login.bank_choose"))
    return finish_strong_login(identity)
