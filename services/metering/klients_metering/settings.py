"""Metering's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
| ``METERING_DATABASE_URL`` | ``sqlite:///var/metering.db`` | meters, readings |
| ``TOKEN_ISSUERS`` | identity at ``IDENTITY_ISSUER`` (``http://127.0.0.1:8001``), audience ``klients-api`` | whose access tokens are accepted (JSON list) |
| ``TOKEN_LEEWAY`` | ``30`` | clock skew allowed on ``exp``/``iat``/``nbf``, seconds |
| ``MAX_WORKERS`` | ``10`` | concurrent workers (and AMQP prefetch) per instance |
| ``READING_WINDOW_OPEN_DAY`` | ``27`` | day of the month the reading window opens (Europe/Riga) |
| ``READING_WINDOW_CLOSE_WORKING_DAYS`` | ``1`` | the window closes at the end of this working day of the next month |
| ``IMPLAUSIBLE_FACTOR`` | ``3`` | a consumption above this × the meter's own average for the same months needs confirmation |
| ``DEFAULT_CALORIFIC_VALUE`` | ``10.55`` | kWh per m³ for months the calorific table lacks |
| ``REMINDER_INTERVAL`` | ``300`` | seconds between checks whether a window opened (reminders) |
| ``OUTBOX_INTERVAL`` | ``2`` | seconds between outbox relay passes |
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from klients_common.settings import env_float, env_int, env_str, nameko_config

# Timer intervals are fixed when the service class is defined, so they are read at import.
OUTBOX_INTERVAL = env_float("OUTBOX_INTERVAL", 2.0)
REMINDER_INTERVAL = env_float("REMINDER_INTERVAL", 300.0)


def config() -> dict[str, Any]:
    """Return metering's nameko configuration."""
    return nameko_config(
        "metering",
        READING_WINDOW_OPEN_DAY=env_int("READING_WINDOW_OPEN_DAY", 27),
        READING_WINDOW_CLOSE_WORKING_DAYS=env_int("READING_WINDOW_CLOSE_WORKING_DAYS", 1),
        IMPLAUSIBLE_FACTOR=env_float("IMPLAUSIBLE_FACTOR", 3.0),
        DEFAULT_CALORIFIC_VALUE=Decimal(env_str("DEFAULT_CALORIFIC_VALUE", "10.55")),
    )
