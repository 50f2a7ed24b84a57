"""Invoices: Latvian rounding, the billing run (idempotent, estimates and their correction), PDFs, and
the current amount to pay (partial payments, overpayment, cancellation, overdue)."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from klients_billing import allocation, invoicing
from klients_billing.balance import amount_due
from klients_billing.models import Contract, Invoice, MeteredConsumption, Payment, Tariff
from klients_billing.pdf import Supplier, render_invoice

TARIFF = Tariff(valid_from=date(2020, 1, 1), energy_eur_per_kwh=Decimal("0.045900"),
                distribution_eur_per_kwh=Decimal("0.012470"), distribution_fixed_eur=Decimal("3.98"),
                excise_eur_per_kwh=Decimal("0.001650"), vat_rate=Decimal("0.21"))
SUPPLIER = Supplier("AS Klients Gāze", "40003000000", "LV40003000000", "Aristida Briāna iela 6, Rīga", "LV00HABA0",
                    "Swedbank AS")


def test_lines_are_rounded_to_cents_and_vat_on_their_sum():
    priced = invoicing.price(Decimal("1476.850"), TARIFF)
    amounts = [line[4] for line in priced.lines]
    # 1476.85 × 0.0459 = 67.787415 → 67.79; × 0.01247 = 18.416320 → 18.42; fixed 3.98; × 0.00165 = 2.436803 → 2.44
    assert amounts == [Decimal("67.79"), Decimal("18.42"), Decimal("3.98"), Decimal("2.44")]
    assert priced.net == Decimal("92.63") == sum(amounts)
    assert priced.vat == Decimal("19.45")  # 92.63 × 0.21 = 19.4523
    assert priced.total == Decimal("112.08")


def test_half_cent_rounds_up():
    tariff = Tariff(valid_from=date(2020, 1, 1), energy_eur_per_kwh=Decimal("0.005"),
                    distribution_eur_per_kwh=Decimal(0), distribution_fixed_eur=Decimal(0),
                    excise_eur_per_kwh=Decimal(0), vat_rate=Decimal("0.21"))
    assert invoicing.price(Decimal("1.000"), tariff).lines[0][4] == Decimal("0.01")


def metered(session, contract, period, kwh, source="customer"):
    session.add(MeteredConsumption(contract=contract.number, meter="M", period=period, reading_id=1,
                                   consumption_m3=int(kwh / 10), consumption_kwh=Decimal(kwh), source=source,
                                   read_on=date.fromisoformat(f"{period}-28"),
                                   submitted_at=datetime.fromisoformat(f"{period}-28T10:00:00+00:00")))
    session.commit()


def invoices_of(session, contract):
    return session.scalars(select(Invoice).where(Invoice.contract_id == contract.id).order_by(Invoice.period)).all()


def test_billing_run_issues_once_per_contract_and_period(billing_sessions, new_contract):
    contract = new_contract()
    period = "2031-03"
    with billing_sessions() as session:
        metered(session, contract, period, 1000)
        first = invoicing.billing_run(db_session=session, period=period, issue_date=date(2031, 4, 3))
        second = invoicing.billing_run(db_session=session, period=period, issue_date=date(2031, 4, 3))
        [invoice] = invoices_of(session, contract)
        total_for_period = session.scalar(select(func.count()).select_from(Invoice).where(Invoice.period == period))
    assert first >= 1 and second == 0 and total_for_period == first
    assert (invoice.number, invoice.consumption_kwh, invoice.estimated) == (
        f"203103-{contract.number}", Decimal("1000.000"), False)
    assert invoice.due_date == date(2031, 4, 23)


def test_estimated_without_reading_then_corrected_when_the_reading_comes(billing_sessions, new_contract):
    contract = new_contract()
    with billing_sessions() as session:
        for period, kwh in (("2032-01", 900), ("2032-02", 1200), ("2032-03", 600)):
            metered(session, contract, period, kwh)
            invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id), period=period,
                                    issue_date=date.fromisoformat(f"{period}-28"))
        # April: no reading → the average of the last three (900 + 1200 + 600) / 3 = 900, estimated.
        april = invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id),
                                        period="2032-04", issue_date=date(2032, 5, 3))
        assert (april.consumption_kwh, april.estimated) == (Decimal("900.000"), True)
        # May's reading covers April and May (1500 kWh): the 900 already billed are deducted.
        metered(session, contract, "2032-05", 1500)
        may = invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id),
                                      period="2032-05", issue_date=date(2032, 6, 3))
        session.commit()
        assert (may.consumption_kwh, may.estimated) == (Decimal("600.000"), False)


def pay(session, contract, amount):
    payment = Payment(id=str(uuid.uuid4()), contract_id=contract.id, person_id="p", amount=Decimal(amount),
                      status="received", created_at=datetime.now(UTC))
    session.add(payment)
    session.flush()
    allocation.apply_payment(db_session=session, payment=payment)
    session.commit()


def issue(session, contract, period, kwh, issue_date):
    metered(session, contract, period, kwh)
    invoice = invoicing.issue_invoice(db_session=session, contract=session.get(Contract, contract.id),
                                      period=period, issue_date=issue_date)
    session.commit()
    return invoice


def test_amount_due_with_partial_payment_overdue_overpayment_and_cancellation(billing_sessions, new_contract):
    contract = new_contract()
    now = datetime(2033, 3, 10, 12, tzinfo=UTC)
    with billing_sessions() as session:
        january = issue(session, contract, "2033-01", 1000, date(2033, 2, 3))   # due 23 Feb: overdue on 10 Mar
        february = issue(session, contract, "2033-02", 500, date(2033, 3, 3))   # due 23 Mar
        due = amount_due(db_session=session, contract=session.get(Contract, contract.id), now=now)
        assert Decimal(due["amount_due"]) == january.total + february.total
        assert Decimal(due["overdue"]) == january.total

        pay(session, contract, "50.00")  # settles the oldest first
        due = amount_due(db_session=session, contract=session.get(Contract, contract.id), now=now)
        assert Decimal(due["amount_due"]) == january.total + february.total - Decimal("50.00")
        assert [i["status"] for i in due["open_invoices"]] == ["partly_paid", "open"]

        pay(session, contract, str(january.total + february.total))  # 50 € too much
        due = amount_due(db_session=session, contract=session.get(Contract, contract.id), now=now)
        assert (due["amount_due"], due["overdue"], due["credit"]) == ("0.00", "0.00", "50.00")
        assert due["open_invoices"] == []

        march = issue(session, contract, "2033-03", 100, date(2033, 4, 3))  # the credit goes to it at once
        session.refresh(march)
        assert march.paid == min(Decimal("50.00"), march.total)

        allocation.cancel_invoice(db_session=session, invoice=session.get(Invoice, february.id))
        session.commit()
        due = amount_due(db_session=session, contract=session.get(Contract, contract.id), now=now)
        # February's payment came back as credit and settled March; the rest stays as credit.
        refunded = february.total + Decimal("50.00") - march.total
        assert (Decimal(due["amount_due"]), Decimal(due["credit"])) == (Decimal(0), refunded)


@pytest.mark.parametrize(("lang", "expected"), [
    ("lv", ["Rēķins", "Dabasgāze", "Akcīzes nodoklis", "PVN 21%", "Kopā apmaksai", "Maksājuma mērķis",
            "Jānis Bērziņš", "Rūpniecības iela 3", "AS Klients Gāze"]),
    ("en", ["Invoice", "Natural gas", "Excise duty", "VAT 21%", "Total to pay", "Payment reference"]),
])
def test_invoice_pdf_carries_the_lines_totals_and_reference(billing_sessions, new_contract, lang, expected):
    contract = new_contract()
    with billing_sessions() as session:
        invoice = issue(session, contract, "2034-01", 1476.85, date(2034, 2, 3))
        document = render_invoice(session.get(Invoice, invoice.id), session.get(Contract, contract.id), SUPPLIER, lang)
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)
    assert document.startswith(b"%PDF")
    for phrase in [*expected, invoice.number, contract.number]:
        assert phrase in text, phrase
    total = f"{invoice.total:.2f}".replace(".", ",") if lang == "lv" else f"{invoice.total:.2f}"
    assert total in text


def test_scheduled_run_bills_the_previous_month_once_across_instances(billing_sessions, new_contract):
    from klients_billing.models import BillingRun

    contract = new_contract()
    before_day = datetime(2035, 3, 4, 12, tzinfo=UTC)
    on_day = datetime(2035, 3, 5, 8, tzinfo=UTC)
    with billing_sessions() as first, billing_sessions() as second:
        assert invoicing.scheduled_run(db_session=first, now=before_day, run_day=5) is None
        issued = invoicing.scheduled_run(db_session=first, now=on_day, run_day=5)
        assert issued and issued >= 1
        assert invoicing.scheduled_run(db_session=second, now=on_day, run_day=5) is None
        assert [i.period for i in invoices_of(second, contract)] == ["2035-02"]
        run = second.get(BillingRun, "2035-02")
        assert (run.issued, run.finished_at is not None) == (issued, True)
