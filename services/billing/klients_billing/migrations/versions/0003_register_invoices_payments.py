"""Holder history, tariffs, invoices and lines, payments, allocations, idempotency keys, outbox; the
contract's credit and the kWh of metered consumption.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)
RATE = sa.Numeric(12, 6)


def upgrade() -> None:
    op.add_column("contracts", sa.Column("credit", MONEY, nullable=False, server_default="0"))
    op.add_column("metered_consumption", sa.Column("consumption_kwh", sa.Numeric(12, 3), nullable=False,
                                                   server_default="0"))
    op.create_table(
        "contract_holders",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("contract_id", sa.Integer, sa.ForeignKey("contracts.id"), nullable=False, index=True),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("holder_personal_code", sa.String(12), nullable=False, index=True),
        sa.Column("since", sa.Date, nullable=False),
        sa.Column("until", sa.Date, nullable=True),
    )
    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("valid_from", sa.Date, nullable=False, unique=True),
        sa.Column("energy_eur_per_kwh", RATE, nullable=False),
        sa.Column("distribution_eur_per_kwh", RATE, nullable=False),
        sa.Column("distribution_fixed_eur", MONEY, nullable=False),
        sa.Column("excise_eur_per_kwh", RATE, nullable=False),
        sa.Column("vat_rate", sa.Numeric(5, 4), nullable=False),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("contract_id", sa.Integer, sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("issue_date", sa.Date, nullable=False),
        sa.Column("due_date", sa.Date, nullable=False),
        sa.Column("net", MONEY, nullable=False),
        sa.Column("vat", MONEY, nullable=False),
        sa.Column("vat_rate", sa.Numeric(5, 4), nullable=False),
        sa.Column("total", MONEY, nullable=False),
        sa.Column("paid", MONEY, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("consumption_kwh", sa.Numeric(12, 3), nullable=False),
        sa.Column("holder_name", sa.String(200), nullable=False),
        sa.Column("supply_address", sa.String(300), nullable=False),
        sa.UniqueConstraint("contract_id", "period"),
    )
    op.create_index("ix_invoices_contract_open", "invoices", ["contract_id", "status", "due_date"])
    op.create_table(
        "invoice_lines",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.id"), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("quantity", sa.Numeric(12, 3), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("unit_price", RATE, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("contract_id", sa.Integer, sa.ForeignKey("contracts.id"), nullable=False, index=True),
        sa.Column("person_id", sa.String(64), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("provider_payment_id", sa.String(64), nullable=True, unique=True),
        sa.Column("redirect_url", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("invoice_id", sa.Integer, sa.ForeignKey("invoices.id"), nullable=False, index=True),
        sa.Column("payment_id", sa.String(36), sa.ForeignKey("payments.id"), nullable=True, index=True),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("person_id", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("response", sa.JSON, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True, index=True),
    )


def downgrade() -> None:
    for table in ("outbox", "idempotency_keys", "allocations", "payments", "invoice_lines", "invoices", "tariffs",
                  "contract_holders"):
        op.drop_table(table)
    op.drop_column("metered_consumption", "consumption_kwh")
    op.drop_column("contracts", "credit")
