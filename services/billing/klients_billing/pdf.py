"""Invoice PDFs in Latvian or English (fpdf2, DejaVu Sans for the Latvian letters)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from importlib import resources

from fpdf import FPDF

from .models import Contract, Invoice

TEXT = {
    "lv": {"title": "Rēķins", "number": "Rēķina Nr.", "period": "Norēķinu periods", "issued": "Izrakstīts",
           "due": "Apmaksāt līdz", "supplier": "Piegādātājs", "client": "Klients", "contract": "Līgums",
           "address": "Piegādes adrese", "line": "Pakalpojums", "qty": "Daudzums", "price": "Cena, EUR",
           "amount": "Summa, EUR", "net": "Kopā bez PVN", "vat": "PVN", "total": "Kopā apmaksai",
           "reference": "Maksājuma mērķis",
           "estimated": "Patēriņš aprēķināts pēc vidējā patēriņa (rādījums nav saņemts).",
           "reg": "Reģ. Nr.", "iban": "Konts",
           "energy": "Dabasgāze", "distribution": "Sadales pakalpojums (mainīgā daļa)",
           "distribution_fixed": "Sadales pakalpojums (fiksētā daļa)", "excise": "Akcīzes nodoklis",
           "kWh": "kWh", "month": "mēn."},
    "en": {"title": "Invoice", "number": "Invoice No.", "period": "Billing period", "issued": "Issued",
           "due": "Due date", "supplier": "Supplier", "client": "Client", "contract": "Contract",
           "address": "Supply address", "line": "Item", "qty": "Quantity", "price": "Price, EUR",
           "amount": "Amount, EUR", "net": "Total excl. VAT", "vat": "VAT", "total": "Total to pay",
           "reference": "Payment reference",
           "estimated": "Consumption estimated from the average (no reading received).",
           "reg": "Reg. No.", "iban": "Account",
           "energy": "Natural gas", "distribution": "Distribution (variable part)",
           "distribution_fixed": "Distribution (fixed part)", "excise": "Excise duty",
           "kWh": "kWh", "month": "month"},
}


@dataclass(frozen=True)
class Supplier:
    """Who issues the invoices."""

    name: str
    registration: str
    vat_number: str
    address: str
    iban: str
    bank: str


def _money(value: Decimal, lang: str) -> str:
    text = f"{value:,.2f}"
    return text.replace(",", " ").replace(".", ",") if lang == "lv" else text


def _date(value: object, lang: str) -> str:
    return f"{value:%d.%m.%Y}" if lang == "lv" else f"{value:%Y-%m-%d}"


def render_invoice(invoice: Invoice, contract: Contract, supplier: Supplier, lang: str = "lv") -> bytes:
    """Return the invoice as a PDF document."""
    t = TEXT[lang]
    pdf = FPDF(format="A4")
    fonts = resources.files("klients_billing") / "fonts"
    pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
    pdf.set_title(f"{t['title']} {invoice.number}")
    pdf.set_author(supplier.name)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.cell(0, 10, f"{t['title']} {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 9)
    pdf.multi_cell(0, 5, f"{t['supplier']}: {supplier.name}, {t['reg']} {supplier.registration}, "
                         f"PVN {supplier.vat_number}\n{supplier.address}\n"
                         f"{t['iban']}: {supplier.iban}, {supplier.bank}",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.multi_cell(0, 5, f"{t['client']}: {invoice.holder_name}\n{t['contract']}: {contract.number}\n"
                         f"{t['address']}: {invoice.supply_address}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in ((t["number"], invoice.number), (t["period"], invoice.period),
                         (t["issued"], _date(invoice.issue_date, lang)), (t["due"], _date(invoice.due_date, lang))):
        pdf.cell(45, 5, f"{label}:")
        pdf.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (80, 30, 35, 35)
    pdf.set_font("DejaVu", "B", 9)
    for width, head in zip(widths, (t["line"], t["qty"], t["price"], t["amount"]), strict=True):
        pdf.cell(width, 7, head, border=1)
    pdf.ln()
    pdf.set_font("DejaVu", "", 9)
    for line in invoice.lines:
        quantity = f"{line.quantity:.3f}".rstrip("0").rstrip(".") + f" {t[line.unit]}"
        cells = (t[line.kind], quantity, f"{line.unit_price:.6f}".rstrip("0").rstrip("."), _money(line.amount, lang))
        for width, cell in zip(widths, cells, strict=True):
            pdf.cell(width, 7, cell, border=1)
        pdf.ln()
    vat_percent = f"{Decimal(invoice.vat_rate) * 100:.0f}%"
    for label, value, bold in ((t["net"], invoice.net, False), (f"{t['vat']} {vat_percent}", invoice.vat, False),
                               (t["total"], invoice.total, True)):
        pdf.set_font("DejaVu", "B" if bold else "", 9)
        pdf.cell(sum(widths[:3]), 7, label, border=1)
        pdf.cell(widths[3], 7, _money(value, lang), border=1)
        pdf.ln()
    pdf.ln(4)
    pdf.set_font("DejaVu", "", 9)
    pdf.cell(0, 5, f"{t['reference']}: {invoice.number}", new_x="LMARGIN", new_y="NEXT")
    if invoice.estimated:
        pdf.cell(0, 5, t["estimated"], new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
