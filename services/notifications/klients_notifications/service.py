"""The notifications nameko service: identity's link e-mails today; the other events join with the
notifications issue."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from nameko.events import event_handler
from nameko.rpc import rpc

from klients_common.nameko_db import Database

from .mailer import MailerProvider, deliver_once
from .retry import Redelivery, is_temporary
from .templates import render, riga_time

log = logging.getLogger(__name__)
LINK_EVENTS = {"email_verification_requested": "email_verification", "password_reset_requested": "password_reset"}


class NotificationsService:
    """Turns events into e-mails."""

    name = "notifications"

    db = Database()
    mailer = MailerProvider()
    retry = Redelivery()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @event_handler("identity", "email_verification_requested", requeue_on_error=True)
    def on_email_verification(self, payload: Any) -> None:
        """Send the registration link (only ever to the register's address; identity checked that)."""
        self._link_mail("email_verification_requested", payload)

    @event_handler("identity", "password_reset_requested", requeue_on_error=True)
    def on_password_reset(self, payload: Any) -> None:
        """Send the password-reset link."""
        self._link_mail("password_reset_requested", payload)

    def _link_mail(self, event: str, payload: Any) -> None:
        try:
            if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in
                                                        ("event_id", "to", "link", "expires_at")):
                raise ValueError("fields missing")
            template = LINK_EVENTS[event]
            message = render(template, payload.get("lang", "lv"),
                             {"link": payload["link"], "deadline": riga_time(payload["expires_at"])})
        except (ValueError, KeyError, TypeError) as exc:
            log.error("malformed %s event dead-lettered: %s", event, exc)
            self.retry.dead_letter(self.db, payload, "malformed", exc)
            return
        try:
            if deliver_once(self.db, self.mailer, event_id=payload["event_id"], template=template, to=payload["to"],
                            message=message):
                log.info("%s sent for event %s", template, payload["event_id"])  # no address, no link in logs
        except (smtplib.SMTPException, OSError) as exc:  # anything else (the database) requeues the event
            if not is_temporary(exc):
                log.warning("%s for event %s refused for good: %s", template, payload["event_id"], type(exc).__name__)
                self.retry.dead_letter(self.db, payload, "refused", exc)
            elif not self.retry.later(payload):
                log.warning("%s for event %s: out of retries", template, payload["event_id"])
                self.retry.dead_letter(self.db, payload, "retries_exhausted", exc)
            else:
                log.info("%s for event %s: will retry (%s)", template, payload["event_id"], type(exc).__name__)
