"""Identity's operator pages (seed: "Registration of an authorised person"; product.md §3.2, §3.3(5)).

Customer-service operators sign in through the Keycloak staff realm (code flow with PKCE S256 and a
confidential client; the access token is verified like any other, audience ``klients-operator-pages``,
realm role ``operator`` required). They record a paper application with its attachment, see the
contract and holder from the client register beside it, and approve (which invites the delegate or
additional user by e-mail) or reject it with a reason. A mandate longer than a year needs the
``supervisor`` role to approve. Operators can also revoke access on a contract. Every action is audited as
``operator:<username>``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlencode

import requests
from flask import Blueprint, Response, current_app, redirect, request, session, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from klients_common import constant_time
from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer
from klients_common.digests import pkce_challenge
from klients_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from klients_common.riga import RIGA

from .. import pages
from ..access import attachments, register
from ..access import grants as access
from ..access.accounts import audit
from ..db import db
from ..models import Application, BrowserSession, as_utc, utcnow
from ..oauth import backchannel

bp = Blueprint("operator", __name__, url_prefix="/operator")
CLIENT_ID = "klients-operator-pages"
SESSION_TTL = 8 * 3600
SUPERVISOR_OVER_DAYS = 366  # approving a mandate longer than a year needs a supervisor
F = TypeVar("F")

TEXT = {
    "lv": {
        "op_title": "Klientu apkalpošana", "op_login": "Pieslēgties ar darbinieka kontu", "op_logout": "Iziet",
        "op_applications": "Iesniegumi", "op_application": "Iesniegums", "op_new": "Reģistrēt iesniegumu",
        "op_pending": "Neizskatīti",
        "op_decided": "Izskatīti", "op_contract": "Līgums", "op_kind": "Veids", "op_delegate": "Pilnvarotā persona",
        "op_subuser": "Papildu lietotājs", "op_name": "Vārds, uzvārds", "op_personal_code": "Personas kods",
        "op_email": "E-pasts", "op_level": "Piekļuves līmenis", "op_level_bills": "Rēķini",
        "op_level_bills_readings": "Rēķini un rādījumi", "op_valid_from": "Derīgs no",
        "op_valid_until": "Derīgs līdz", "op_attachment": "Pielikums (PDF, JPEG vai PNG, līdz 10 MB)",
        "op_save": "Saglabāt", "op_register": "Klientu reģistrā", "op_holder": "Līguma turētājs",
        "op_address": "Piegādes adrese", "op_status": "Statuss", "op_approve": "Apstiprināt",
        "op_reject": "Noraidīt", "op_reason": "Iemesls", "op_view_attachment": "Atvērt pielikumu",
        "op_users": "Piekļuve līgumam", "op_revoke": "Atsaukt", "op_find": "Atrast līgumu",
        "op_no_role": "Jūsu kontam nav operatora lomas. Vērsieties pie administratora.",
        "op_supervisor_needed": "Pilnvaru, kas ilgāka par gadu, apstiprina vadītājs (loma supervisor).",
        "op_unknown_contract": "Klientu reģistrā šāda līguma nav.",
        "op_att_too_large": "Pielikums ir lielāks par 10 MB.",
        "op_att_wrong_type": "Pielikumam jābūt PDF, JPEG vai PNG failam (pārbaudām saturu, ne nosaukumu).",
        "op_att_empty": "Pievienojiet iesnieguma pielikumu.", "op_recorded": "reģistrēts",
        "op_approved": "apstiprināts", "op_rejected": "noraidīts", "op_reason_needed": "Norādiet noraidījuma iemeslu.",
        "op_already_decided": "Šis iesniegums jau ir izskatīts.", "op_signed_in_as": "Pieslēdzies",
        "op_session_expired": "Darbinieka sesija beigusies. Pieslēdzieties vēlreiz.",
        "op_role_owner": "Līguma turētājs", "op_role_delegate": "Pilnvarotā persona",
        "op_role_subuser": "Papildu lietotājs", "op_status_invited": "uzaicināts", "op_status_active": "aktīvs",
        "op_status_expired": "uzaicinājums nokavēts", "op_status_ended": "beidzies", "op_status_revoked": "atsaukts",
        "op_contract_active": "spēkā", "op_contract_closed": "slēgts",
        "op_file_application/pdf": "PDF dokuments", "op_file_image/png": "PNG attēls",
        "op_file_image/jpeg": "JPEG attēls",
        "op_err_role_bad_role": "Izvēlieties veidu: pilnvarotā persona vai papildu lietotājs.",
        "op_err_name_bad_name": "Norādiet personas vārdu un uzvārdu (līdz 200 rakstzīmēm).",
        "op_err_email_bad_email": "Norādiet derīgu e-pasta adresi.",
        "op_err_level_bad_level": "Izvēlieties piekļuves līmeni: rēķini vai rēķini un rādījumi.",
        "op_err_level_not_for_delegate": "Pilnvarotajai personai ir visas tiesības; līmeni nenorāda.",
        "op_err_personal_code_bad_personal_code": "Tas nav derīgs personas kods.",
        "op_err_personal_code_required": "Pilnvarotās personas kods ir obligāts.",
        "op_err_valid_from_bad_date": "Norādiet datumu (GGGG-MM-DD).",
        "op_err_valid_until_bad_date": "Norādiet datumu (GGGG-MM-DD).",
        "op_err_valid_until_in_the_past": "Beigu datumam jābūt šodien vai vēlāk.",
        "op_err_valid_from_after_end": "Sākums nevar būt pēc beigām.",
        "op_err_valid_until_required": "Pilnvarai jānorāda beigu datums.",
        "op_err_already_has_access": "Šai personai jau ir piekļuve līgumam vai atvērts uzaicinājums.",
        "op_err_cannot_approve": "Iesniegumu nevar apstiprināt: pārbaudiet tā datus.",
        "op_err_already_ended": "Šī piekļuve jau ir beigusies vai atsaukta.",
        "op_err_owner_follows_register": "Līguma turētāja piekļuve seko klientu reģistram; to šeit nemaina.",
    },
    "en": {
        "op_title": "Customer service", "op_login": "Sign in with your staff account", "op_logout": "Sign out",
        "op_applications": "Applications", "op_application": "Application", "op_new": "Record an application",
        "op_pending": "Waiting",
        "op_decided": "Decided", "op_contract": "Contract", "op_kind": "Kind", "op_delegate": "Authorised person",
        "op_subuser": "Additional user", "op_name": "Full name", "op_personal_code": "Personal code",
        "op_email": "E-mail", "op_level": "Access level", "op_level_bills": "Bills",
        "op_level_bills_readings": "Bills and readings", "op_valid_from": "Valid from",
        "op_valid_until": "Valid until", "op_attachment": "Attachment (PDF, JPEG or PNG, up to 10 MB)",
        "op_save": "Save", "op_register": "In the client register", "op_holder": "Contract holder",
        "op_address": "Supply address", "op_status": "Status", "op_approve": "Approve", "op_reject": "Reject",
        "op_reason": "Reason", "op_view_attachment": "Open the attachment", "op_users": "Access to the contract",
        "op_revoke": "Revoke", "op_find": "Find a contract",
        "op_no_role": "Your account does not have the operator role. Ask an administrator.",
        "op_supervisor_needed": "A mandate longer than a year is approved by a supervisor (role supervisor).",
        "op_unknown_contract": "The client register has no such contract.",
        "op_att_too_large": "The attachment is larger than 10 MB.",
        "op_att_wrong_type": "The attachment must be a PDF, JPEG or PNG file (we check the content, not the name).",
        "op_att_empty": "Attach the application.", "op_recorded": "recorded", "op_approved": "approved",
        "op_rejected": "rejected", "op_reason_needed": "Give the reason for the rejection.",
        "op_already_decided": "This application has already been decided.", "op_signed_in_as": "Signed in as",
        "op_session_expired": "Your staff session has ended. Sign in again.",
        "op_role_owner": "Contract holder", "op_role_delegate": "Authorised person",
        "op_role_subuser": "Additional user", "op_status_invited": "invited", "op_status_active": "active",
        "op_status_expired": "invitation expired", "op_status_ended": "ended", "op_status_revoked": "revoked",
        "op_contract_active": "in force", "op_contract_closed": "closed",
        "op_file_application/pdf": "PDF document", "op_file_image/png": "PNG image",
        "op_file_image/jpeg": "JPEG image",
        "op_err_role_bad_role": "Choose the kind: authorised person or additional user.",
        "op_err_name_bad_name": "Give the person's full name (at most 200 characters).",
        "op_err_email_bad_email": "Give a valid e-mail address.",
        "op_err_level_bad_level": "Choose the access level: bills, or bills and readings.",
        "op_err_level_not_for_delegate": "An authorised person has every right; give no level.",
        "op_err_personal_code_bad_personal_code": "This is not a valid personal code.",
        "op_err_personal_code_required": "An authorised person's personal code is required.",
        "op_err_valid_from_bad_date": "Give a date (YYYY-MM-DD).",
        "op_err_valid_until_bad_date": "Give a date (YYYY-MM-DD).",
        "op_err_valid_until_in_the_past": "The end date must be today or later.",
        "op_err_valid_from_after_end": "The start must not be after the end.",
        "op_err_valid_until_required": "A mandate needs an end date.",
        "op_err_already_has_access": "This person already has access to the contract or an open invitation.",
        "op_err_cannot_approve": "The application cannot be approved: check its details.",
        "op_err_already_ended": "This access has already ended or been revoked.",
        "op_err_owner_follows_register": "The holder's access follows the client register; it is not changed here.",
    },
}
for _lang, _texts in TEXT.items():
    pages.TEXT[_lang].update(_texts)
UNTRANSLATED = "⟦{}⟧"  # shown for a word with no entry in the table: visible, and found by the tests


@bp.app_template_global("say")
def say(key: str) -> str:
    """Return the page language's word for ``key`` (a role, status, level, file kind or message code), from the
    one table (``pages.TEXT``); a key without an entry shows as ``⟦key⟧`` instead of an English word."""
    return str(pages.TEXT[pages.current_lang()].get(key) or UNTRANSLATED.format(key))


# --- signing in through the staff realm ----------------------------------------------------------------

def _realm() -> str:
    return str(current_app.config["SETTINGS"].staff_issuer)


def _verifier() -> TokenVerifier:
    if "klients_staff_verifier" not in current_app.extensions:
        issuer = _realm()
        current_app.extensions["klients_staff_verifier"] = TokenVerifier([TrustedIssuer(
            issuer=issuer, jwks_uri=f"{issuer}/protocol/openid-connect/certs", audience=CLIENT_ID,
            token_types=("JWT",), client_id_claims=("azp",), payload_types=("Bearer",))])
    verifier: TokenVerifier = current_app.extensions["klients_staff_verifier"]
    return verifier


def current_operator() -> dict[str, Any] | None:
    """Return the signed-in operator of this browser (username, name, roles), if their session stands."""
    operator = session.get("operator")
    if not operator or operator.get("expires", 0) < time.time():
        return None
    return dict(operator)


def operator_required(view: F) -> F:
    """Let only a signed-in operator (realm role ``operator``) through; others go to sign in or get 403.

    A form post (every action: record, approve, reject, revoke) also needs the staff session to stand at
    Keycloak: re-checked with a refresh when the last check is older than ``STAFF_RECHECK_SECONDS``, so a
    disabled or signed-out operator cannot act even if Keycloak's logout token never arrived."""

    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        operator = current_operator()
        texts = pages.TEXT[pages.current_lang()]
        if operator is None and request.method == "POST":
            return pages.problem_page(401, "op_title", texts["op_session_expired"])
        if operator is None:
            return redirect(url_for("operator.login", next=request.full_path if request.method == "GET" else None))
        if request.method == "POST":
            operator = _recheck(operator)
            if operator is None:
                return pages.problem_page(401, "op_title", texts["op_session_expired"])
        if "operator" not in operator["roles"]:
            return pages.problem_page(403, "op_title", texts["op_no_role"])
        return view(*args, **kwargs)  # type: ignore[operator]

    return wrapper  # type: ignore[return-value]


def _recheck(operator: dict[str, Any]) -> dict[str, Any] | None:
    """Return the operator with roles as Keycloak has them now, or None (and end the session here) when
    Keycloak no longer stands behind the staff session (signed out, disabled, session expired)."""
    settings = current_app.config["SETTINGS"]
    if time.time() - float(operator.get("checked_at", 0)) < settings.staff_recheck_seconds:
        return operator
    try:
        answer = requests.post(f"{_realm()}/protocol/openid-connect/token", data={
            "grant_type": "refresh_token", "refresh_token": operator.get("refresh_token", "")},
            auth=(CLIENT_ID, settings.staff_client_secret), timeout=10)
        token = _verifier().verify(answer.json()["access_token"]) if answer.status_code == 200 else None
    except (requests.RequestException, KeyError, ValueError, InvalidToken):
        token = None  # Keycloak cannot confirm the session: no action on its word from earlier
    if token is None or str(token.subject) != operator.get("sub", token.subject):
        session.pop("operator", None)
        audit(db(), actor=f"operator:{operator.get('username')}", action="operator_session_ended", publish=False,
              reason="staff session no longer valid at Keycloak")
        db().commit()
        return None
    operator.update({"roles": sorted(token.roles() & {"operator", "supervisor"}), "checked_at": time.time(),
                     "refresh_token": answer.json().get("refresh_token", operator.get("refresh_token", ""))})
    session["operator"] = operator
    return operator


def end_operator_sessions(logout: backchannel.Logout) -> int:
    """End identity's operator sessions of a Keycloak login (``sid``), or of every login of the staff user
    (``sub`` alone); return how many were ended."""
    operator = BrowserSession.data["operator"]
    if logout.sid is not None:
        condition = operator["sid"].as_string() == logout.sid
        if logout.sub is not None:
            condition = condition & (operator["sub"].as_string() == logout.sub)
    else:
        condition = operator["sub"].as_string() == logout.sub
    ended = 0
    for row in db().scalars(select(BrowserSession).where(condition).with_for_update()):
        data = dict(row.data)
        gone = data.pop("operator", {})
        row.data = data
        ended += 1
        audit(db(), actor=f"operator:{gone.get('username')}", action="operator_session_ended", publish=False,
              reason="signed out at Keycloak")
    return ended


@bp.post("/backchannel-logout")
def backchannel_logout() -> ResponseReturnValue:
    """Keycloak's staff realm ends a login: end the operator sessions it opened here (OIDC Back-Channel
    Logout 1.0; see ``backchannel``)."""
    logout = backchannel.receive("klients_staff_logout", lambda: backchannel.LogoutTokenVerifier(
        _realm(), CLIENT_ID, replay_scope="logout:staff"))
    if isinstance(logout, Response):
        return logout
    end_operator_sessions(logout)
    db().commit()
    return backchannel.answer(200)


@bp.get("/login")
def login() -> ResponseReturnValue:
    """Send the operator to the staff realm (code flow, PKCE S256, state and nonce)."""
    verifier = secrets.token_urlsafe(48)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    next_page = request.args.get("next", "")
    session["operator_login"] = {"state": state, "nonce": nonce, "verifier": verifier,
                                 "next": next_page if next_page.startswith("/operator") else ""}
    challenge = pkce_challenge(verifier)
    return redirect(f"{_realm()}/protocol/openid-connect/auth?" + urlencode({
        "client_id": CLIENT_ID, "response_type": "code", "scope": "openid",
        "redirect_uri": url_for("operator.callback", _external=True), "state": state, "nonce": nonce,
        "code_challenge": challenge, "code_challenge_method": "S256", "ui_locales": pages.current_lang()}))


@bp.get("/callback")
def callback() -> ResponseReturnValue:
    """Exchange the code for the operator's tokens, verify the access token, open the staff session."""
    attempt = session.pop("operator_login", None)
    texts = pages.TEXT[pages.current_lang()]
    if not attempt or not constant_time.equal(attempt["state"], request.args.get("state", "")) or \
            not request.args.get("code"):
        return pages.problem_page(400, "op_title", texts["op_session_expired"])
    settings = current_app.config["SETTINGS"]
    try:
        answer = requests.post(f"{_realm()}/protocol/openid-connect/token", data={
            "grant_type": "authorization_code", "code": request.args["code"], "code_verifier": attempt["verifier"],
            "redirect_uri": url_for("operator.callback", _external=True)},
            auth=(CLIENT_ID, settings.staff_client_secret), timeout=10)
        answer.raise_for_status()
        token = _verifier().verify(answer.json()["access_token"])
    except (requests.RequestException, KeyError, ValueError, InvalidToken):
        return pages.problem_page(502, "op_title", texts["op_session_expired"])
    username = str(token.claims.get("preferred_username") or token.subject)
    sid = token.claims.get("sid") or _id_token_claims(answer.json().get("id_token", "")).get("sid")
    name = str(token.claims.get("name") or username)
    lang, csrf = session.get("lang", "lv"), session.get("csrf")
    session.clear()
    session.rotate()  # type: ignore[attr-defined]
    session.update({"lang": lang, "operator": {
        "username": username, "name": name, "roles": sorted(token.roles() & {"operator", "supervisor"}),
        "expires": time.time() + SESSION_TTL, "id_token": answer.json().get("id_token", ""),
        "sub": token.subject, "sid": sid, "refresh_token": answer.json().get("refresh_token", ""),
        "checked_at": time.time()}})
    if csrf:
        session["csrf"] = csrf
    audit(db(), actor=f"operator:{username}", action="operator_signed_in")
    db().commit()
    return redirect(attempt["next"] or url_for("operator.home"))


def _id_token_claims(id_token: str) -> dict[str, Any]:
    """Return the claims of the ID token Keycloak just handed us on the back channel (TLS to the token
    endpoint with our client secret: OpenID Connect Core 3.1.3.7 lets that stand for its signature)."""
    try:
        claims = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    """End the staff session here and at Keycloak."""
    pages.check_csrf()
    operator = session.pop("operator", None) or {}
    return redirect(f"{_realm()}/protocol/openid-connect/logout?" + urlencode({
        "client_id": CLIENT_ID, "id_token_hint": operator.get("id_token", ""),
        "post_logout_redirect_uri": url_for("operator.home", _external=True)}))


# --- pages ----------------------------------------------------------------------------------------------

def _actor() -> access.Actor:
    operator = current_operator() or {}
    return access.Actor(id=f"operator:{operator.get('username')}", role="operator", name="")


def _register(contract: str) -> dict[str, Any] | None:
    return register.entry(contract)


def _render(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    return pages.render(template, status, operator=current_operator(), **context)


@bp.get("/")
@operator_required
def home() -> ResponseReturnValue:
    """Applications waiting for a decision, and the latest decided ones."""
    pending = list(db().scalars(select(Application).where(Application.status == "recorded")
                                .order_by(Application.recorded_at)))
    decided = list(db().scalars(select(Application).where(Application.status != "recorded")
                                .order_by(Application.decided_at.desc()).limit(20)))
    return _render("operator_home.html", pending=pending, decided=decided)


@bp.get("/find")
@operator_required
def find() -> ResponseReturnValue:
    """Go to a contract's page."""
    contract = request.args.get("contract", "").strip().upper()
    return redirect(url_for("operator.contract_page", contract=contract) if contract else url_for("operator.home"))


EMPTY_FORM = {"contract": "", "kind": "delegate", "name": "", "personal_code": "", "email": "", "level": "bills",
              "valid_from": "", "valid_until": ""}


@bp.get("/applications/new")
@operator_required
def new_application() -> ResponseReturnValue:
    """The form for a paper application."""
    return _render("operator_new.html", form={**EMPTY_FORM, "contract": request.args.get("contract", "")}, errors={})


@bp.post("/applications/new")
@operator_required
def record_application() -> ResponseReturnValue:
    """Record the application and its attachment (checked by content), after the register check."""
    request.max_content_length = attachments.MAX_BYTES + 256 * 1024  # this form only: the file and the fields
    pages.check_csrf()
    texts = pages.TEXT[pages.current_lang()]
    form = {k: request.form.get(k, "").strip() for k in EMPTY_FORM}
    form["contract"] = form["contract"].upper()
    errors: dict[str, str] = {}
    entry = _register(form["contract"]) if form["contract"] else None
    if entry is None:
        errors["contract"] = texts["op_unknown_contract"]
    body: dict[str, Any] = {"role": form["kind"], "name": form["name"], "email": form["email"],
                            "personal_code": form["personal_code"] or None,
                            "valid_from": form["valid_from"] or None, "valid_until": form["valid_until"] or None}
    if form["kind"] == "subuser":
        body["level"] = form["level"]
    try:
        new = access.validate_new_user(body)
    except ValidationFailed as exc:
        errors.update({e["field"]: say(f"op_err_{e['field']}_{e['code']}")
                       for e in exc.extra.get("errors", [])})  # type: ignore[union-attr]
        new = None
    upload = request.files.get("attachment")
    stored = None
    try:
        stored = attachments.store(db(), upload.read(attachments.MAX_BYTES + 1) if upload else b"")
    except attachments.AttachmentRefused as exc:
        errors["attachment"] = texts[f"op_att_{exc.code}"]
    if errors or new is None or stored is None or entry is None:
        db().rollback()  # nothing is kept from a refused application, the file included
        return _render("operator_new.html", 413 if errors.get("attachment") == texts["op_att_too_large"] else 422,
                       form=form, errors=errors)
    application = Application(
        id=str(uuid.uuid4()), kind=new.role, contract=entry["number"], holder_name=entry["holder_name"],
        name=new.name, personal_code=new.personal_code, email=new.email, level=new.level, valid_from=new.valid_from,
        valid_until=new.valid_until, status="recorded", attachment_name=(upload.filename or "")[:200] if upload else "",
        attachment_type=stored.content_type, attachment_size=stored.size, attachment_sha256=stored.sha256,
        recorded_by=_actor().id)
    db().add(application)
    audit(db(), actor=_actor().id, action="application_recorded", contract=entry["number"],
                 as_role="operator", application=application.id, kind=new.role)
    db().commit()
    return redirect(url_for("operator.application_page", application_id=application.id), code=303)


def _application(application_id: str) -> Application:
    row = db().get(Application, application_id)
    if row is None:
        raise NotFound("no such application")
    return row


@bp.get("/applications/<application_id>")
@operator_required
def application_page(application_id: str) -> ResponseReturnValue:
    """The application beside the register's entry for its contract."""
    application = _application(application_id)
    return _render("operator_application.html", application=application, entry=_register(application.contract),
                   needs_supervisor=_needs_supervisor(application), error=request.args.get("error"))


@bp.get("/applications/<application_id>/attachment")
@operator_required
def attachment(application_id: str) -> Response:
    """The attachment, to operators only: a download, never rendered as a page of ours."""
    application = _application(application_id)
    content = attachments.load(db(), application.attachment_sha256)
    if content is None:
        raise NotFound("the attachment is missing")
    response = Response(content, mimetype=application.attachment_type)
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}[application.attachment_type]
    response.headers["Content-Disposition"] = f'attachment; filename="application-{application.id}.{extension}"'
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response.headers["Cache-Control"] = "no-store"
    return response


def _needs_supervisor(application: Application) -> bool:
    start = application.valid_from or as_utc(application.recorded_at).astimezone(RIGA).date()
    return application.kind == "delegate" and application.valid_until is not None and \
        application.valid_until - start > timedelta(days=SUPERVISOR_OVER_DAYS)


@bp.post("/applications/<application_id>/approve")
@operator_required
def approve(application_id: str) -> ResponseReturnValue:
    """Approve: create the pending grant and e-mail its invitation (supervisor for mandates over a year)."""
    pages.check_csrf()
    texts = pages.TEXT[pages.current_lang()]
    application = db().scalar(select(Application).where(Application.id == application_id).with_for_update())
    if application is None:
        raise NotFound("no such application")
    if application.status != "recorded":
        return pages.problem_page(409, "op_title", texts["op_already_decided"])
    if _needs_supervisor(application) and "supervisor" not in (current_operator() or {}).get("roles", []):
        return pages.problem_page(403, "op_title", texts["op_supervisor_needed"])
    settings = current_app.config["SETTINGS"]
    new = access.NewUser(name=application.name, email=application.email, role=application.kind,
                         level=application.level, personal_code=application.personal_code,
                         valid_from=application.valid_from, valid_until=application.valid_until)
    actor = _actor()
    application.status, application.decided_by, application.decided_at = "approved", actor.id, utcnow()
    try:
        created = access.invite(db(), access.Actor(id=actor.id, role="operator", name=texts["op_title"]),
                                application.contract, new, link_base=settings.issuer,
                                ttl=timedelta(hours=settings.invitation_ttl_hours), lang=pages.current_lang())
    except (Conflict, Forbidden, ValidationFailed) as exc:
        db().rollback()
        error = say("op_err_already_has_access") if isinstance(exc, Conflict) else say("op_err_cannot_approve")
        return redirect(url_for("operator.application_page", application_id=application_id, error=error))
    application = _application(application_id)
    application.grant_id = created["id"]
    audit(db(), actor=actor.id, action="application_approved", contract=application.contract,
                 as_role="operator", application=application.id, grant=created["id"])
    db().commit()
    return redirect(url_for("operator.application_page", application_id=application_id), code=303)


@bp.post("/applications/<application_id>/reject")
@operator_required
def reject(application_id: str) -> ResponseReturnValue:
    """Reject with a reason (required)."""
    pages.check_csrf()
    texts = pages.TEXT[pages.current_lang()]
    application = db().scalar(select(Application).where(Application.id == application_id).with_for_update())
    if application is None:
        raise NotFound("no such application")
    reason = request.form.get("reason", "").strip()[:500]
    if application.status != "recorded":
        return pages.problem_page(409, "op_title", texts["op_already_decided"])
    if not reason:
        return redirect(url_for("operator.application_page", application_id=application_id,
                                error=texts["op_reason_needed"]))
    actor = _actor()
    application.status, application.reason = "rejected", reason
    application.decided_by, application.decided_at = actor.id, utcnow()
    audit(db(), actor=actor.id, action="application_rejected", contract=application.contract,
                 as_role="operator", application=application.id, reason=reason)
    db().commit()
    return redirect(url_for("operator.application_page", application_id=application_id), code=303)


@bp.get("/contracts/<contract>")
@operator_required
def contract_page(contract: str) -> ResponseReturnValue:
    """A contract's register entry, who has access, and its applications."""
    entry = _register(contract)
    if entry is None:
        return pages.problem_page(404, "op_title", pages.TEXT[pages.current_lang()]["op_unknown_contract"])
    applications = list(db().scalars(select(Application).where(Application.contract == entry["number"])
                                     .order_by(Application.recorded_at.desc())))
    return _render("operator_contract.html", entry=entry, users=access.list_users(db(), entry["number"]),
                   applications=applications)


@bp.post("/contracts/<contract>/users/<grant_id>/revoke")
@operator_required
def revoke(contract: str, grant_id: str) -> ResponseReturnValue:
    """Revoke access or cancel an invitation on the holder's behalf (with a reason)."""
    pages.check_csrf()
    try:
        access.revoke(db(), _actor(), contract, grant_id, reason=request.form.get("reason", "").strip()
                      or "revoked by customer service")
    except (Conflict, Forbidden) as exc:
        db().rollback()
        if isinstance(exc, Conflict):
            return pages.problem_page(409, "op_title", say("op_err_already_ended"))
        return pages.problem_page(403, "op_title", say("op_err_owner_follows_register"))
    return redirect(url_for("operator.contract_page", contract=contract), code=303)


@bp.errorhandler(413)
def _too_large(_exc: Exception) -> ResponseReturnValue:
    return pages.problem_page(413, "op_title", pages.TEXT[pages.current_lang()]["op_att_too_large"])


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> ResponseReturnValue:
    return pages.problem_page(404, "op_title", exc.detail)
