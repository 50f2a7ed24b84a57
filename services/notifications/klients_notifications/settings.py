"""Notifications' configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
| ``NOTIFICATIONS_DATABASE_URL`` | ``sqlite:///var/notifications.db`` | delivery log |
| ``TOKEN_ISSUERS`` | identity at ``IDENTITY_ISSUER`` (``http://127.0.0.1:8001``), audience ``klients-api`` | whose access tokens are accepted (JSON list) |
| ``MAX_WORKERS`` | ``10`` | concurrent workers (and AMQP prefetch) per instance |
| ``SMTP_HOST`` / ``SMTP_PORT`` | ``127.0.0.1`` / ``8025`` | the SMTP server (``make run``'s local one by default) |
| ``SMTP_FROM`` | ``Klients <noreply@klients.lv>`` | the sender |
| ``SMTP_STARTTLS`` | ``false`` | upgrade the connection with STARTTLS |
| ``SMTP_USER`` / ``SMTP_PASSWORD`` | unset | SMTP authentication |
| ``PORTAL_URL`` | ``http://127.0.0.1:3000`` | the portal, for links in reminders |
| ``PUBLIC_API_URL`` | ``http://127.0.0.1:8000`` | the gateway as people reach it (unsubscribe links) |
| ``SMS_PROVIDER`` | ``log`` | ``log`` (development: the log), ``none``, or ``package.module:Class`` implementing ``sms.SmsProvider`` |
| ``NOTIFICATIONS_LINK_SECRET`` | a development value | signs unsubscribe links; set a long random value in production |
"""

from __future__ import annotations

import os
from typing import Any

from klients_common.settings import env_bool, env_int, env_str, nameko_config

from .mailer import SmtpSettings


def config() -> dict[str, Any]:
    """Return notifications' nameko configuration."""
    return nameko_config(
        "notifications", PORTAL_URL=env_str("PORTAL_URL", "http://127.0.0.1:3000"),
        PUBLIC_API_URL=env_str("PUBLIC_API_URL", "http://127.0.0.1:8000"),
        LINK_SECRET=env_str("NOTIFICATIONS_LINK_SECRET", "dev-notifications-link-secret"),
        SMS_PROVIDER=env_str("SMS_PROVIDER", "log"), SMTP=SmtpSettings(
        host=env_str("SMTP_HOST", "127.0.0.1"), port=env_int("SMTP_PORT", 8025),
        sender=env_str("SMTP_FROM", "Klients <noreply@klients.lv>"), starttls=env_bool("SMTP_STARTTLS", False),
        user=os.environ.get("SMTP_USER"), password=os.environ.get("SMTP_PASSWORD")))
