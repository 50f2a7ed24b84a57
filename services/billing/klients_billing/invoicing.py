"""Invoices: lines from consumption and the tariff, Latvian rounding, the monthly billing run.

Each line is quantity × unit price rounded to the cent on the line (half up); VAT is computed on the sum
of the rounded net lines and rounded once; the total is net + VAT. That is how a Latvian utility invoice
adds up: the lines printed sum exactly to the net printed.

The billing run issues, for every active contract, one invoice per period (a unique constraint makes a
second run a no-op). Consumption comes from metering's accepted readings for the period; with none, the
run estimates from the contract's last three metered periods and marks the invoice estimated. When an
actual reading follows estimates, the kWh already billed as estimates since the previous actual reading
are deducted, so nothing is billed twice.
"""

from __future__ import annotations

import logging
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from klients_common.db import as_utc
from klients_common.errors import NotFound
from klients_common.outbox import enqueue
from klients_common.riga import RIGA

from .allocation import allocate_credit
from .models import BillingRun, Contract, Invoice, InvoiceLine, MeteredConsumption, Tariff, outbox

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
KWH = Decimal("0.001")
PAYMENT_TERM_DAYS = 20
LINES = (
    ("energy", "kWh", "energy_eur_per_kwh"),
    ("distribution", "kWh", "distribution_eur_per_kwh"),
    ("distribution_fixed", "month", "distribution_fixed_eur"),
    ("excise", "kWh", "excise_eur_per_kwh"),
)


def cents(value: Decimal) -> Decimal:
    """Round to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Priced:
    """An invoice's figures before it is stored."""

    lines: list[tuple[str, Decimal, str, Decimal, Decimal]]  # kind, quantity, unit, unit price, amount
    net: Decimal
    vat_rate: Decimal
    vat: Decimal
    total: Decimal


def price(kwh: Decimal, tariff: Tariff) -> Priced:
    """Return the lines and totals for ``kwh`` under ``tariff``."""
    lines = []
    for kind, unit, rate_name in LINES:
        quantity = Decimal(1) if unit == "month" else kwh
        rate = Decimal(getattr(tariff, rate_name))
        lines.append((kind, quantity, unit, rate, cents(quantity * rate)))
    net = sum((line[4] for line in lines), Decimal("0.00"))
    vat = cents(net * Decimal(tariff.vat_rate))
    return Priced(lines, net, Decimal(tariff.vat_rate), vat, net + vat)


def tariff_for(*, db_session: Session, period: str) -> Tariff:
    """Return the tariff in force on the period's first day."""
    first = date.fromisoformat(f"{period}-01")
    tariff = db_session.scalar(select(Tariff).where(Tariff.valid_from <= first).order_by(Tariff.valid_from.desc()))
    if tariff is None:
        raise NotFound(f"no tariff in force for {period}")
    return tariff


def consumption_for(*, db_session: Session, contract: Contract, period: str) -> tuple[Decimal, bool]:
    """Return (kWh to bill for the period, estimated?)."""
    actual = db_session.scalar(select(func.sum(MeteredConsumption.consumption_kwh)).where(
        MeteredConsumption.contract == contract.number, MeteredConsumption.period == period,
        MeteredConsumption.source != "estimated"))
    if actual is not None:
        # Deduct what was billed as estimates since the last invoice that rested on a reading.
        last_actual = db_session.scalar(select(func.max(Invoice.period)).where(
            Invoice.contract_id == contract.id, Invoice.estimated.is_(False), Invoice.period < period))
        estimated = db_session.scalar(select(func.sum(Invoice.consumption_kwh)).where(
            Invoice.contract_id == contract.id, Invoice.estimated.is_(True), Invoice.status != "cancelled",
            Invoice.period < period, Invoice.period > (last_actual or ""))) or Decimal(0)
        return max(Decimal(actual) - Decimal(estimated), Decimal(0)).quantize(KWH), False
    recent = db_session.scalars(select(MeteredConsumption.consumption_kwh).where(
        MeteredConsumption.contract == contract.number, MeteredConsumption.period < period)
        .order_by(MeteredConsumption.period.desc()).limit(3)).all()
    if not recent:
        return Decimal("0.000"), True
    return (sum((Decimal(k) for k in recent), Decimal(0)) / len(recent)).quantize(KWH), True


def issue_invoice(*, db_session: Session, contract: Contract, period: str, issue_date: date) -> Invoice | None:
    """Issue the contract's invoice for ``period``; None if it already exists."""
    if db_session.scalar(select(Invoice.id).where(Invoice.contract_id == contract.id, Invoice.period == period)):
        return None
    kwh, estimated = consumption_for(db_session=db_session, contract=contract, period=period)
    priced = price(kwh, tariff_for(db_session=db_session, period=period))
    invoice = Invoice(
        number=f"{period.replace('-', '')}-{contract.number}", contract_id=contract.id, period=period,
        issue_date=issue_date, due_date=issue_date + timedelta(days=PAYMENT_TERM_DAYS), net=priced.net,
        vat=priced.vat, vat_rate=priced.vat_rate, total=priced.total, paid=Decimal("0.00"), status="open",
        estimated=estimated,
        consumption_kwh=kwh, holder_name=contract.holder_name, supply_address=contract.supply_address,
        lines=[InvoiceLine(position=i, kind=kind, quantity=qty, unit=unit, unit_price=rate, amount=amount)
               for i, (kind, qty, unit, rate, amount) in enumerate(priced.lines, start=1)])
    try:
        with db_session.begin_nested():
            db_session.add(invoice)
    except IntegrityError:
        return None  # another run issued it a moment ago
    allocate_credit(db_session=db_session, contract=contract)
    enqueue(db_session, outbox, "invoice_issued", {
        "contract": contract.number, "invoice": invoice.number, "period": period, "total": str(invoice.total),
        "due_date": invoice.due_date.isoformat(), "estimated": estimated, "email": contract.email})
    return invoice


def scheduled_run(*, db_session: Session, now: datetime, run_day: int) -> int | None:
    """On or after ``run_day`` of a month (Europe/Riga), bill the previous month once across all instances;
    return how many invoices were issued, or None when there was nothing to do. A run that died is taken
    over after an hour."""
    today = now.astimezone(RIGA).date()
    if today.day < run_day:
        return None
    previous = today.replace(day=1) - timedelta(days=1)
    period = f"{previous:%Y-%m}"
    dialect_insert = pg_insert if db_session.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = db_session.execute(
        dialect_insert(BillingRun).values(period=period, started_at=now).on_conflict_do_nothing()).rowcount
    if not claimed:
        run = db_session.get(BillingRun, period, with_for_update={"skip_locked": True})
        if run is None or run.finished_at is not None or as_utc(run.started_at) > now - timedelta(hours=1):
            db_session.rollback()
            return None
        run.started_at = now
    db_session.commit()
    issued = billing_run(db_session=db_session, period=period, issue_date=today)
    db_session.execute(update(BillingRun).where(BillingRun.period == period).values(finished_at=now, issued=issued))
    db_session.commit()
    log.info("billing run for %s issued %d invoices", period, issued)
    return issued


def billing_run(*, db_session: Session, period: str, issue_date: date, batch: int = 500) -> int:
    """Issue every active contract's invoice for ``period`` (idempotent); return how many were issued."""
    last_day = date.fromisoformat(f"{period}-01").replace(day=monthrange(int(period[:4]), int(period[5:]))[1])
    issued = 0
    after = 0
    while True:
        contracts = db_session.scalars(
            select(Contract).where(Contract.id > after, Contract.status == "active",
                                   Contract.start_date <= last_day).order_by(Contract.id).limit(batch)).all()
        if not contracts:
            return issued
        for contract in contracts:
            if issue_invoice(db_session=db_session, contract=contract, period=period, issue_date=issue_date):
                issued += 1
        db_session.commit()
        after = contracts[-1].id
