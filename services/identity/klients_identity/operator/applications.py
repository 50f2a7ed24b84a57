"""Identity's operator pages: paper applications for authorised persons and additional users (docs/access.md,
"Operator pages"; docs/operators.md).

Operators (signed in through the staff realm, ``staff``) record a paper application with its attachment,
see the contract and holder from the client register beside it, and approve (which invites the delegate or
additional user by e-mail) or reject it with a reason. A mandate longer than a year needs the
``supervisor`` role to approve. Operators can also revoke access on a contract. Every action is audited as
``operator:<username>``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import Response, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from klients_common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from klients_common.riga import RIGA

from .. import pages
from ..access import attachments, register
from ..access import grants as access
from ..access.accounts import audit
from ..db import db
from ..models import Application, as_utc, utcnow
from .staff import bp, current_operator, operator_required
from .texts import say

SUPERVISOR_OVER_DAYS = 366  # approving a mandate longer than a year needs a supervisor

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


def _application(application_id: str, *, lock: bool = False) -> Application:
    row = db().get(Application, application_id, with_for_update=lock)
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
    application = _application(application_id, lock=True)
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
    application = _application(application_id, lock=True)
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
