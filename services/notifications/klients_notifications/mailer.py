"""Sending e-mail over SMTP (a nameko dependency), and the once-only delivery log around it."""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from .models import Delivery
from .templates import Message

log = logging.getLogger(__name__)
MARK_PATIENCE_SECONDS = 60  # how long a sent message waits for the database to record it


@dataclass(frozen=True)
class SmtpSettings:
    """Where mail goes."""

    host: str
    port: int
    sender: str
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 10.0


class Mailer:
    """Sends one message per call over a fresh SMTP connection."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send(self, to: str, message: Message, *, event_id: str) -> None:
        """Send ``message`` to ``to``; raise ``smtplib.SMTPException`` or ``OSError`` on failure."""
        mail = EmailMessage()
        mail["From"], mail["To"], mail["Subject"] = self.settings.sender, to, message.subject
        mail["Message-ID"] = make_msgid(idstring=event_id.replace("-", ""), domain="klients.lv")
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        with smtplib.SMTP(self.settings.host, self.settings.port, timeout=self.settings.timeout) as smtp:
            if self.settings.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.settings.user:
                smtp.login(self.settings.user, self.settings.password or "")
            smtp.send_message(mail)


class MailerProvider(DependencyProvider):
    """Gives workers the configured mailer."""

    def setup(self) -> None:
        """Build the mailer from configuration."""
        self.mailer = Mailer(self.container.config["SMTP"])

    def get_dependency(self, worker_ctx: Any) -> Mailer:
        """Return the mailer."""
        return self.mailer


def deliver_once(session: Session, mailer: Mailer, *, event_id: str, template: str, to: str,
                 message: Message) -> bool:
    """Send the message unless this event already sent it; return whether it was sent now.

    The delivery row is claimed before sending (a new row, or a ``failed`` one taken back by one worker only)
    and marked after: nothing touches the database between the claim and the send, so a database outage
    can delay a message but not lose it, and the mark is retried until the database is back. A process that
    dies between the claim and the mark leaves the row ``sending`` and the redelivered event does not send
    again (at most one e-mail; such rows are listed for operators to check)."""
    if not _claim(session, event_id=event_id, template=template, to=to):
        return False
    try:
        mailer.send(to, message, event_id=event_id)
    except (smtplib.SMTPException, OSError) as exc:
        _mark(session, event_id, template, status="failed", last_error=type(exc).__name__)
        raise
    _mark(session, event_id, template, status="sent", sent_at=datetime.now(UTC))
    return True


def _claim(session: Session, *, event_id: str, template: str, to: str) -> bool:
    try:
        with session.begin_nested():
            session.add(Delivery(event_id=event_id, template=template, recipient=to, status="sending", attempts=1,
                                 created_at=datetime.now(UTC)))
        session.commit()
        return True
    except IntegrityError:
        session.rollback()
    retried = session.execute(update(Delivery).where(
        Delivery.event_id == event_id, Delivery.template == template, Delivery.status == "failed",
    ).values(status="sending", attempts=Delivery.attempts + 1))
    session.commit()
    return bool(retried.rowcount)


def _mark(session: Session, event_id: str, template: str, **values: Any) -> None:
    """Record how the send went; the message is out (or refused) already, so wait for the database."""
    delay = 0.5
    while True:
        try:
            session.execute(update(Delivery).where(Delivery.event_id == event_id, Delivery.template == template)
                            .values(**values))
            session.commit()
            return
        except (OperationalError, DBAPIError) as exc:
            session.rollback()
            if delay > MARK_PATIENCE_SECONDS:
                raise
            log.warning("recording delivery %s/%s waits for the database (%s)", event_id, template,
                        type(exc).__name__)
            time.sleep(delay)
            delay *= 2
