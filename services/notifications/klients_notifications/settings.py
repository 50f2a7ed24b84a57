"""Notifications's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
| ``METERING_DATABASE_URL`` | ``sqlite:///var/notifications.db`` | delivery log |
| ``TOKEN_ISSUERS`` | identity at ``IDENTITY_ISSUER`` (``http://127.0.0.1:8001``), audience ``klients-api`` | whose access tokens are accepted (JSON list) |
| ``TOKEN_LEEWAY`` | ``30`` | clock skew allowed on ``exp``/``iat``/``nbf``, seconds |
| ``MAX_WORKERS`` | ``10`` | concurrent workers (and AMQP prefetch) per instance |
"""

from __future__ import annotations

from typing import Any

from klients_common.settings import nameko_config


def config() -> dict[str, Any]:
    """Return notifications's nameko configuration."""
    return nameko_config("notifications")
