"""Billing's tables: the client register, tariffs, invoices, payments and their allocation."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from klients_common.outbox import outbox_table, processed_events_table

MONEY = Numeric(12, 2)
RATE = Numeric(12, 6)


class BillingBase(DeclarativeBase):
    """Declarative base of billing's tables."""


class Contract(BillingBase):
    """A gas supply contract in the client register; ``holders`` keeps who held it when."""

    __tablename__ = "contracts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_personal_code: Mapped[str] = mapped_column(String(12), index=True)
    supply_address: Mapped[str] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    credit: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))  # payments not yet allocated

    holders: Mapped[list[ContractHolder]] = relationship(back_populates="contract", order_by="ContractHolder.since")


class ContractHolder(BillingBase):
    """Who held a contract from ``since`` until ``until`` (None: still)."""

    __tablename__ = "contract_holders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    holder_name: Mapped[str] = mapped_column(String(200))
    holder_personal_code: Mapped[str] = mapped_column(String(12), index=True)
    since: Mapped[date] = mapped_column(Date)
    until: Mapped[date | None] = mapped_column(Date, nullable=True)

    contract: Mapped[Contract] = relationship(back_populates="holders")


class Tariff(BillingBase):
    """Prices in force from ``valid_from`` (the newest one not after the period's first day applies)."""

    __tablename__ = "tariffs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date, unique=True)
    energy_eur_per_kwh: Mapped[Decimal] = mapped_column(RATE)
    distribution_eur_per_kwh: Mapped[Decimal] = mapped_column(RATE)
    distribution_fixed_eur: Mapped[Decimal] = mapped_column(MONEY)
    excise_eur_per_kwh: Mapped[Decimal] = mapped_column(RATE)
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))


class Invoice(BillingBase):
    """One contract's invoice for one month."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("contract_id", "period"),
        Index("ix_invoices_contract_open", "contract_id", "status", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"))
    period: Mapped[str] = mapped_column(String(7))
    issue_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    net: Mapped[Decimal] = mapped_column(MONEY)
    vat: Mapped[Decimal] = mapped_column(MONEY)
    vat_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    total: Mapped[Decimal] = mapped_column(MONEY)
    paid: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"))
    status: Mapped[str] = mapped_column(String(12), default="open")  # open, partly_paid, paid, cancelled
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    consumption_kwh: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    holder_name: Mapped[str] = mapped_column(String(200))  # as on the day of issue
    supply_address: Mapped[str] = mapped_column(String(300))

    contract: Mapped[Contract] = relationship()
    lines: Mapped[list[InvoiceLine]] = relationship(order_by="InvoiceLine.position", cascade="all, delete-orphan")

    @property
    def remaining(self) -> Decimal:
        """Return what is still to pay on this invoice."""
        return Decimal(0) if self.status == "cancelled" else self.total - self.paid


class InvoiceLine(BillingBase):
    """A line: quantity × unit price, rounded to cents on the line."""

    __tablename__ = "invoice_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(24))  # energy, distribution, distribution_fixed, excise
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit: Mapped[str] = mapped_column(String(8))
    unit_price: Mapped[Decimal] = mapped_column(RATE)
    amount: Mapped[Decimal] = mapped_column(MONEY)


class Payment(BillingBase):
    """A payment the person started; ``received`` once the provider's signed callback says so."""

    __tablename__ = "payments"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_id: Mapped[int] = mapped_column(ForeignKey("contracts.id"), index=True)
    person_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(12), nullable=True)  # the payer's role on the contract
    amount: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(12))  # pending, received, cancelled, failed
    provider_payment_id: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    redirect_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    contract: Mapped[Contract] = relationship()


class Allocation(BillingBase):
    """How much of a payment (or of the contract's credit) settled which invoice."""

    __tablename__ = "allocations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    payment_id: Mapped[str | None] = mapped_column(ForeignKey("payments.id"), nullable=True, index=True)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdempotencyKey(BillingBase):
    """The first result of a request sent with an ``Idempotency-Key``, per person, kept at least 24 h."""

    __tablename__ = "idempotency_keys"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))  # in_progress, done
    response: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class MeteredConsumption(BillingBase):
    """A contract's consumption per meter and month, as metering's ``reading_accepted`` events report it;
    the billing run turns it into invoice lines. A later reading of the same window replaces it."""

    __tablename__ = "metered_consumption"
    __table_args__ = (UniqueConstraint("contract", "meter", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    contract: Mapped[str] = mapped_column(String(32), index=True)
    meter: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(7))
    reading_id: Mapped[int] = mapped_column(Integer)
    consumption_m3: Mapped[int] = mapped_column(Integer)
    consumption_kwh: Mapped[Decimal] = mapped_column(Numeric(12, 3), default=Decimal(0))
    read_on: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(12))
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BillingRun(BillingBase):
    """One row per period the scheduled billing run claimed, so several instances run it once."""

    __tablename__ = "billing_runs"

    period: Mapped[str] = mapped_column(String(7), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    issued: Mapped[int | None] = mapped_column(Integer, nullable=True)


processed_events = processed_events_table(BillingBase.metadata)
outbox = outbox_table(BillingBase.metadata)
