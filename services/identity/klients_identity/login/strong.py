"""After any strong login (Smart-ID, eParaksts, a bank): registration against the client register, the
person's owner grants and login session, then back to the client; or, while an invitation is being taken up
in this browser, the confirmation of the invitee."""

from __future__ import annotations

from flask import session
from flask.typing import ResponseReturnValue

from .. import pages
from ..access import accounts, register
from ..connectors.base import VerifiedIdentity
from ..db import db
from .invitation import strong_login_for_invitation
from .signin import signed_in


def finish_strong_login(identity: VerifiedIdentity) -> ResponseReturnValue:
    """Register or find the person, open their login session, and resume the authorization request.
    While an invitation is being taken up in this browser, the login confirms the invitee instead."""
    if (session.get("invitation") or {}).get("ready"):
        return strong_login_for_invitation(identity)
    try:
        person = accounts.complete_strong_login(db(), identity, register.contracts_of)
    except accounts.NoContract:
        return pages.render("refused.html", 403)
    login = accounts.start_login_session(db(), person, acr=identity.acr, amr=list(identity.amr),
                                         method=identity.method)
    db().commit()
    return signed_in(login.sid)
