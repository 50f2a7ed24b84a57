"""Sending e-mail over SMTP (a nameko dependency), and the once-only delivery log around it."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import Delivery
from .templates import Message


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

    The delivery row is claimed before sending and marked after: a crash in between leaves it
    ``sending``, and the redelivered event does not send again (at most one e-mail; such rows are
    listed for operators to check)."""
    now = datetime.now(UTC)
    try:
        with session.begin_nested():
            session.add(Delivery(event_id=event_id, template=template, recipient=to, status="sending", attempts=0,
                                 created_at=now))
        session.commit()
    except IntegrityError:
        session.rollback()
        existing = session.scalar(select(Delivery).where(Delivery.event_id == event_id,
                                                         Delivery.template == template))
        if existing is None or existing.status != "failed":
            return False
    row = session.scalar(select(Delivery).where(Delivery.event_id == event_id, Delivery.template == template))
    row.attempts += 1
    try:
        mailer.send(to, message, event_id=event_id)
    except (smtplib.SMTPException, OSError) as exc:
        row.status, row.last_error = "failed", type(exc).__name__
        session.commit()
        raise
    row.status, row.sent_at = "sent", datetime.now(UTC)
    session.commit()
    return True
