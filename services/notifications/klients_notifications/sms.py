"""Text messages through a provider interface. Production plugs in its SMS gateway by implementing
``SmsProvider`` and naming it in ``SMS_PROVIDER`` (``module:Class``); development uses ``log``, which
writes the message to the service log with the number masked. ``none`` turns SMS off.

SMS go through the same once-only delivery log as e-mail (``deliver_once``): a provider has the
mailer's ``send(to, message, event_id=...)`` shape and only the message's text is sent.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol

from nameko.extensions import DependencyProvider

from .templates import Message

log = logging.getLogger(__name__)


class SmsProvider(Protocol):
    """Sends one text message; raises ``OSError`` (temporary) or another error on failure."""

    def send(self, to: str, message: Message, *, event_id: str) -> None:
        """Send ``message.text`` to the E.164 number ``to``."""


def masked(number: str) -> str:
    """Return the number with all but its country part and last three digits hidden."""
    return number[:4] + "*" * max(len(number) - 7, 0) + number[-3:] if len(number) > 7 else "***"


class LoggingSmsProvider:
    """Development: the message goes to the log (what a real provider would send, the number masked)."""

    def send(self, to: str, message: Message, *, event_id: str) -> None:
        log.info("SMS to %s: %s", masked(to), message.text, extra={"sms_event": event_id})


def provider_from(name: str) -> SmsProvider | None:
    """Return the configured provider: ``log``, ``none``, or ``package.module:Class``."""
    if name == "none":
        return None
    if name == "log":
        return LoggingSmsProvider()
    module, _, cls = name.partition(":")
    provider: SmsProvider = getattr(importlib.import_module(module), cls)()
    return provider


class SmsProviderDependency(DependencyProvider):
    """Gives workers the configured SMS provider (or None when SMS are off)."""

    def setup(self) -> None:
        self.provider = provider_from(self.container.config.get("SMS_PROVIDER", "log"))

    def get_dependency(self, worker_ctx: Any) -> SmsProvider | None:
        return self.provider
