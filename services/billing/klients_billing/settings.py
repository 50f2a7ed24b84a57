"""Billing's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
| ``BILLING_DATABASE_URL`` | ``sqlite:///var/billing.db`` | the client register, invoices, payments |
| ``TOKEN_ISSUERS`` | identity at ``IDENTITY_ISSUER`` (``http://127.0.0.1:8001``), audience ``klients-api`` | whose access tokens are accepted (JSON list) |
| ``TOKEN_LEEWAY`` | ``30`` | clock skew allowed on ``exp``/``iat``/``nbf``, seconds |
| ``MAX_WORKERS`` | ``10`` | concurrent workers (and AMQP prefetch) per instance |
| ``PAYMENT_PROVIDER_URL`` | ``http://127.0.0.1:8090`` | the payment provider's API (the simulator in development) |
| ``PAYMENT_MERCHANT_ID`` / ``PAYMENT_API_KEY`` | ``klients`` / ``dev-api-key`` | our account at the provider |
| ``PAYMENT_CALLBACK_SECRET`` | ``dev-callback-secret`` | the provider's callback signing secret |
| ``PAYMENT_CALLBACK_URL`` | ``http://127.0.0.1:8000/api/v1/payment-callbacks`` | where the provider reports (the gateway) |
| ``PAYMENT_RETURN_URL`` | ``http://127.0.0.1:8000/payment-done`` | where the payer returns to (the portal) |
| ``SUPPLIER_NAME``, ``SUPPLIER_REGISTRATION``, ``SUPPLIER_VAT``, ``SUPPLIER_ADDRESS``, ``SUPPLIER_IBAN``, ``SUPPLIER_BANK`` | demo values | printed on invoices |
| ``OUTBOX_INTERVAL`` | ``2`` | seconds between outbox relay passes |
| ``BILLING_RUN_DAY`` | ``5`` | from this day of the month (Europe/Riga) the previous month is invoiced, once |
| ``BILLING_RUN_CHECK_INTERVAL`` | ``3600`` | seconds between checks whether the monthly run is due |
"""

from __future__ import annotations

from typing import Any

from klients_common.settings import env_float, env_int, env_str, nameko_config

from .pdf import Supplier
from .provider import PaymentProvider

OUTBOX_INTERVAL = env_float("OUTBOX_INTERVAL", 2.0)
BILLING_RUN_CHECK_INTERVAL = env_float("BILLING_RUN_CHECK_INTERVAL", 3600.0)


def config() -> dict[str, Any]:
    """Return billing's nameko configuration."""
    return nameko_config(
        "billing",
        PAYMENT_PROVIDER=PaymentProvider(
            base_url=env_str("PAYMENT_PROVIDER_URL", "http://127.0.0.1:8090"),
            merchant_id=env_str("PAYMENT_MERCHANT_ID", "klients"),
            api_key=env_str("PAYMENT_API_KEY", "dev-api-key"),
            callback_secret=env_str("PAYMENT_CALLBACK_SECRET", "dev-callback-secret"),
        ),
        BILLING_RUN_DAY=env_int("BILLING_RUN_DAY", 5),
        PAYMENT_CALLBACK_URL=env_str("PAYMENT_CALLBACK_URL", "http://127.0.0.1:8000/api/v1/payment-callbacks"),
        PAYMENT_RETURN_URL=env_str("PAYMENT_RETURN_URL", "http://127.0.0.1:8000/payment-done"),
        SUPPLIER=Supplier(
            name=env_str("SUPPLIER_NAME", "AS Klients Gāze"),
            registration=env_str("SUPPLIER_REGISTRATION", "40003000000"),
            vat_number=env_str("SUPPLIER_VAT", "LV40003000000"),
            address=env_str("SUPPLIER_ADDRESS", "Aristida Briāna iela 6, Rīga, LV-1001"),
            iban=env_str("SUPPLIER_IBAN", "LV00HABA0000000000000"),
            bank=env_str("SUPPLIER_BANK", "Swedbank AS"),
        ),
    )
