"""Demo data (docs/domain.md, "Demo data"): contracts held by the simulators' test persons, a tariff, a year of
invoices from the same consumption metering's demo readings show (all paid but the last, which is open)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from .allocation import apply_payment
from .invoicing import issue_invoice
from .models import Contract, ContractHolder, Invoice, MeteredConsumption, Payment, Tariff
from .register import announce

DEMO_CONTRACTS = [
    # Smart-ID DEMO account PNOLV-040404-10003 (device link and notification end OK).
    dict(number="LVG-100001", holder_name="OK TESTNUMBER", holder_personal_code="040404-10003",
         supply_address="Brīvības iela 101-5, Rīga, LV-1001", email="ok.testnumber@demo.klients.lv"),
    # Smart-ID new-format DEMO account PNOLV-320000-10003.
    dict(number="LVG-100002", holder_name="OK TESTNUMBER", holder_personal_code="320000-10003",
         supply_address="Lāčplēša iela 20, Rīga, LV-1011", email="new.format@demo.klients.lv"),
    # eParaksts example person PNOLV-010180-15097.
    dict(number="LVG-100003", holder_name="Jānis Bērziņš", holder_personal_code="010180-15097",
         supply_address="Rūpniecības iela 3, Jelgava, LV-3001", email="janis.berzins@demo.klients.lv"),
    # Bank-link example user 374042-80367.
    dict(number="LVG-100004", holder_name="Anna Kalniņa", holder_personal_code="374042-80367",
         supply_address="Zemnieku iela 7, Liepāja, LV-3401", email="anna.kalnina@demo.klients.lv"),
]
DEMO_TARIFF = dict(valid_from=date(2020, 1, 1), energy_eur_per_kwh=Decimal("0.045900"),
                   distribution_eur_per_kwh=Decimal("0.012470"), distribution_fixed_eur=Decimal("3.98"),
                   excise_eur_per_kwh=Decimal("0.001650"), vat_rate=Decimal("0.21"))
MONTHLY_M3 = [190, 165, 130, 80, 40, 22, 18, 20, 38, 85, 140, 180]  # as metering's demo readings


def _months_back(today: date, back: int) -> str:
    index = today.year * 12 + today.month - 1 - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def seed(session: Session, today: date | None = None) -> int:
    """Insert what is missing; return how many rows were added."""
    today = today or datetime.now(UTC).date()
    added = 0
    if session.scalar(select(Tariff.id).limit(1)) is None:
        session.add(Tariff(**DEMO_TARIFF))
        added += 1
    existing = {c.number: c for c in session.scalars(select(Contract))}
    for row in DEMO_CONTRACTS:
        contract = existing.get(row["number"])
        if contract is None:
            contract = Contract(start_date=date(2020, 1, 1), credit=Decimal("0.00"), **row)
            session.add(contract)
            session.flush()
            session.add(ContractHolder(contract_id=contract.id, holder_name=row["holder_name"],
                                       holder_personal_code=row["holder_personal_code"], since=contract.start_date))
            added += 1
        announce(session, contract)  # every run: notifications learns where to write
        if session.scalar(select(Invoice.id).where(Invoice.contract_id == contract.id).limit(1)) is None:
            added += _year_of_invoices(session, contract, today)
    return added


def _year_of_invoices(session: Session, contract: Contract, today: date) -> int:
    invoices = []
    for back in range(12, 0, -1):
        period = _months_back(today, back)
        m3 = MONTHLY_M3[int(period[5:]) - 1]
        session.add(MeteredConsumption(
            contract=contract.number, meter="demo", period=period, reading_id=0, consumption_m3=m3,
            consumption_kwh=Decimal(m3) * Decimal("10.55"), read_on=date.fromisoformat(f"{period}-28"),
            source="customer", submitted_at=datetime.fromisoformat(f"{period}-28T09:00:00+00:00")))
        session.flush()
        issue_date = date.fromisoformat(f"{_months_back(today, back - 1)}-03")
        invoice = issue_invoice(db_session=session, contract=contract, period=period, issue_date=issue_date)
        if invoice is not None:
            invoices.append(invoice)
    for invoice in invoices[:-1]:  # everything paid but the newest
        payment = Payment(id=str(uuid.uuid4()), contract_id=contract.id, person_id="demo", amount=invoice.total,
                          status="received", created_at=datetime.now(UTC), completed_at=datetime.now(UTC))
        session.add(payment)
        session.flush()
        apply_payment(db_session=session, payment=payment)
    return len(invoices)
