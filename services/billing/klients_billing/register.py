"""The client register: contracts and their holders, the import from the utility's system, and what
identity asks of it (which contracts a personal code holds, the e-mail on file for a contract).

Import files are CSV (header row) or JSON (a list of objects) with the fields
``number, holder_name, holder_personal_code, supply_address, email, status, start_date, end_date``.
Every row is validated; if any row is wrong, nothing is imported and each error names its line (CSV:
the file line; JSON: the item's position, from 1). A row for an existing contract updates it; a new
holder closes the previous holder's period and starts a new one, so the contract keeps its history.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from klients_common.errors import NotFound, ValidationFailed
from klients_common.nameko_db import Reader
from klients_common.outbox import enqueue
from klients_common.personal_code import normalise_personal_code

from .models import Contract, ContractHolder, outbox

FIELDS = ("number", "holder_name", "holder_personal_code", "supply_address", "email", "status", "start_date",
          "end_date")
NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
STATUSES = ("active", "ended", "suspended")


@dataclass(frozen=True)
class RowError:
    """One problem in an import file."""

    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field}: {self.message}"


def parse_file(text: str, fmt: str) -> list[tuple[int, dict[str, Any]]]:
    """Return (line, row) pairs from CSV or JSON text, or raise ValidationFailed on a file that cannot be read."""
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"not JSON: {exc}") from exc
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise ValidationFailed("a JSON import is a list of objects")
        return list(enumerate(data, start=1))
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise ValidationFailed(f"the CSV header lacks {', '.join(missing)}")
    return [(reader.line_num, row) for row in reader]


def validate_row(line: int, row: dict[str, Any]) -> tuple[dict[str, Any], list[RowError]]:
    """Return the cleaned row and its errors."""
    errors: list[RowError] = []
    clean: dict[str, Any] = {}

    def text(name: str, required: bool = True, limit: int = 300) -> str | None:
        value = row.get(name)
        value = value.strip() if isinstance(value, str) else value
        if value in (None, ""):
            if required:
                errors.append(RowError(line, name, "is required"))
            return None
        if not isinstance(value, str) or len(value) > limit:
            errors.append(RowError(line, name, f"must be text of at most {limit} characters"))
            return None
        return value

    number = text("number", limit=32)
    if number and not NUMBER.match(number):
        errors.append(RowError(line, "number", "use capital letters, digits and hyphens (3–32)"))
    clean["number"] = number
    clean["holder_name"] = text("holder_name", limit=200)
    code = text("holder_personal_code", limit=12)
    if code:
        try:
            code = normalise_personal_code(code)
        except ValueError as exc:
            errors.append(RowError(line, "holder_personal_code", str(exc)))
    clean["holder_personal_code"] = code
    clean["supply_address"] = text("supply_address")
    email = text("email", required=False, limit=254)
    if email:
        try:
            email = validate_email(email, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            errors.append(RowError(line, "email", str(exc)))
    clean["email"] = email
    status = text("status", required=False, limit=16) or "active"
    if status not in STATUSES:
        errors.append(RowError(line, "status", f"is one of {', '.join(STATUSES)}"))
    clean["status"] = status
    for name, required in (("start_date", True), ("end_date", False)):
        raw = text(name, required=required, limit=10)
        try:
            clean[name] = date.fromisoformat(raw) if raw else None
        except ValueError:
            errors.append(RowError(line, name, "must be a date, YYYY-MM-DD"))
    if clean.get("start_date") and clean.get("end_date") and clean["end_date"] < clean["start_date"]:
        errors.append(RowError(line, "end_date", "is before start_date"))
    unknown = sorted(set(row) - set(FIELDS))
    if unknown:
        errors.append(RowError(line, unknown[0], "is not a register field"))
    return clean, errors


def import_register(*, db_session: Session, text: str, fmt: str, today: date) -> tuple[int, int]:
    """Import a register file all or nothing; return (created, updated) or raise ValidationFailed with every error."""
    rows = parse_file(text, fmt)
    cleaned, errors, seen = [], [], {}
    for line, row in rows:
        clean, row_errors = validate_row(line, row)
        if clean.get("number") in seen:
            row_errors.append(RowError(line, "number", f"repeats line {seen[clean['number']]}"))
        seen.setdefault(clean.get("number"), line)
        errors += row_errors
        cleaned.append(clean)
    if errors:
        raise ValidationFailed(f"{len(errors)} error(s); nothing was imported",
                               {"errors": [str(e) for e in errors]})
    created = updated = 0
    existing = {c.number: c for c in db_session.scalars(
        select(Contract).where(Contract.number.in_([r["number"] for r in cleaned])))}
    for row in cleaned:
        contract = existing.get(row["number"])
        if contract is None:
            contract = Contract(credit=0, **row)
            db_session.add(contract)
            db_session.flush()
            db_session.add(ContractHolder(contract_id=contract.id, holder_name=row["holder_name"],
                                          holder_personal_code=row["holder_personal_code"],
                                          since=row["start_date"]))
            created += 1
            announce(db_session, contract)
        else:
            if contract.holder_personal_code != row["holder_personal_code"]:
                transfer(db_session=db_session, contract=contract, holder_name=row["holder_name"],
                         holder_personal_code=row["holder_personal_code"], on=today)
            for name in ("holder_name", "supply_address", "email", "status", "start_date", "end_date"):
                setattr(contract, name, row[name])
            updated += 1
            announce(db_session, contract)
    return created, updated


def announce(session: Session, contract: Contract) -> None:
    """Tell other services (notifications) who to write to about a contract: ``contract_registered``."""
    enqueue(session, outbox, "contract_registered", {
        "contract": contract.number, "email": contract.email, "holder_name": contract.holder_name,
        "status": contract.status})


def transfer(*, db_session: Session, contract: Contract, holder_name: str, holder_personal_code: str,
             on: date) -> None:
    """Move a contract to a new holder from ``on``; the previous holder's period ends the day before."""
    current = db_session.scalar(select(ContractHolder).where(ContractHolder.contract_id == contract.id,
                                                             ContractHolder.until.is_(None)))
    if current is not None:
        current.until = on
    db_session.add(ContractHolder(contract_id=contract.id, holder_name=holder_name,
                                  holder_personal_code=holder_personal_code, since=on))
    contract.holder_name = holder_name
    contract.holder_personal_code = holder_personal_code
    # Identity ends the previous holder's access and everything they granted (delegates, additional users).
    enqueue(db_session, outbox, "contract_transferred", {"contract": contract.number,
                                                         "holder_personal_code": holder_personal_code,
                                                         "on": on.isoformat()})


def contracts_of(*, db_session: Session, personal_code: str) -> list[dict[str, Any]]:
    """Return the active contracts a personal code holds now (for identity's owner grants)."""
    code = normalise_personal_code(personal_code)
    rows = db_session.scalars(select(Contract).where(Contract.holder_personal_code == code,
                                                     Contract.status == "active").order_by(Contract.number))
    return [{"number": c.number, "holder_name": c.holder_name, "supply_address": c.supply_address} for c in rows]


def email_on_file(*, db_session: Session, contract: str) -> str | None:
    """Return the e-mail address the register holds for a contract (for e-mail registration)."""
    row = db_session.scalar(select(Contract).where(Contract.number == contract))
    if row is None:
        raise NotFound(f"contract {contract} not found")
    return row.email


# Built once: building the statement per call (operators, its cache key) was a tenth of billing's CPU per read.
_CONTRACT_BY_NUMBER = select(Contract).where(Contract.number == bindparam("number"))


def get_contract_or_raise(*, db_session: Session, number: str) -> Contract:
    """Return the contract with this number, or raise NotFound."""
    contract = db_session.scalar(_CONTRACT_BY_NUMBER, {"number": number})
    if contract is None:
        raise NotFound(f"contract {number} not found")
    return contract


_CONTRACT_ROW = select(*Contract.__table__.c).where(Contract.number == bindparam("number"))


def read_contract_or_raise(reads: Reader, number: str) -> Any:
    """Return the contract's row (the register's columns, read-only: no session), or raise NotFound."""
    rows = reads.all(_CONTRACT_ROW, {"number": number})
    if not rows:
        raise NotFound(f"contract {number} not found")
    return rows[0]
