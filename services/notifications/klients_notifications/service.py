"""The notifications nameko service: turns events into e-mails (and text messages).

Events arrive through ``klients_common.bus.handler``: only from the component that owns each event type, only
matching its schema. A mail server that is down or answers 4xx is a transient failure (the event is tried
again in place, with back-off); an address it refuses for good is ``Undeliverable`` (dead-lettered at once,
listed by ``klients-notifications dead-letters``). Each message goes out once per event id."""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from nameko.dependency_providers import Config

from klients_common.bus import Undeliverable, handler, is_transient
from klients_common.nameko_auth import rpc
from klients_common.nameko_db import Database

from . import preferences
from .mailer import MailerProvider, deliver_once
from .models import ContractContact
from .sms import SmsProviderDependency
from .templates import (
    ESTIMATED,
    FLAGGED,
    REJECTION_REASONS,
    access_ended_values,
    invitation_accepted_values,
    invitation_values,
    local_date,
    money,
    render,
    riga_time,
)

log = logging.getLogger(__name__)
LINK_EVENTS = {"email_verification_requested": "email_verification", "password_reset_requested": "password_reset",
               "contact_email_verification_requested": "contact_email_verification"}


class NotificationsService:
    """Turns events into e-mails."""

    name = "notifications"

    db = Database()
    mailer = MailerProvider()
    sms = SmsProviderDependency()
    config = Config()

    @rpc
    def ping(self) -> str:
        """Answer readiness probes."""
        return "pong"

    @rpc
    def unsubscribe(self, email: str, sig: str) -> bool:
        """Turn reminders off for an address, authorised by the signed link in the reminder itself."""
        return preferences.turn_off_reminders(self.db, self.config["LINK_SECRET"], str(email), str(sig))

    @handler("email_verification_requested")
    def on_email_verification(self, payload: Any) -> None:
        """Send the registration link (only ever to the register's address; identity checked that)."""
        self._link_mail("email_verification_requested", payload)

    @handler("password_reset_requested")
    def on_password_reset(self, payload: Any) -> None:
        """Send the password-reset link."""
        self._link_mail("password_reset_requested", payload)

    def _link_mail(self, event: str, payload: Any) -> None:
        self._mail(LINK_EVENTS[event], payload, "to", ("link", "expires_at"),
                   lambda p, lang: {"link": p["link"], "deadline": riga_time(p["expires_at"])})

    @handler("contact_email_verification_requested")
    def on_contact_email_verification(self, payload: Any) -> None:
        """Send the link that confirms a new contact address (to the new address only)."""
        self._link_mail("contact_email_verification_requested", payload)

    @handler("contact_email_changed")
    def on_contact_email_changed(self, payload: Any) -> None:
        """Tell the old address that the e-mail was changed, and the phone too if there is one (a security
        message: never turned off; out of band, since the mailbox may be what was taken over)."""
        self._mail("contact_email_changed", payload, "to", ("new_email",),
                   lambda p, lang: {"new_email": p["new_email"]})
        if payload.get("phone"):
            self._text("contact_email_changed_sms", payload, {"new_email": str(payload.get("new_email", ""))})

    def _text(self, template: str, payload: dict[str, Any], values: dict[str, Any]) -> None:
        """Send a text message once per event through the configured provider (if SMS are on)."""
        if self.sms is None:
            return
        message = render(template, "en" if payload.get("lang") == "en" else "lv", values)
        deliver_once(self.db, self.sms, event_id=payload["event_id"], template=template, to=payload["phone"],
                     message=message)  # a provider that is down (OSError) is retried like the mail server

    @handler("contact_preferences_changed")
    def on_contact_preferences_changed(self, payload: Any) -> None:
        """Remember the language and the reminder choice a person made in the portal, for their address."""
        changed_at = datetime.fromisoformat(payload["changed_at"])  # the schema guarantees a date-time
        email = str(payload["email"])
        preferences.apply_contact(self.db, email, language=payload.get("language"),
                                  reminders=payload.get("reminders"), changed_at=changed_at)
        self.db.commit()

    @handler("invitation_created")
    def on_invitation_created(self, payload: Any) -> None:
        """Send the invitation link to the invited address (an access message: never turned off)."""
        self._mail("invitation", payload, "to", ("contract", "role", "link", "expires_at"), invitation_values)

    @handler("invitation_accepted_notice")
    def on_invitation_accepted(self, payload: Any) -> None:
        """Tell the inviter (or the holder) that the invited person has taken up the access (never turned off)."""
        self._mail("invitation_accepted", payload, "to", ("invitee", "contract", "role"), invitation_accepted_values)

    @handler("grant_revoked")
    def on_grant_revoked(self, payload: Any) -> None:
        """Tell a person their access to a contract has ended, when identity says they should hear of it (a
        security message: never turned off). Services drop the access itself on their own broadcast handlers."""
        if not payload["notify"] or not payload["to"]:
            log.info("access_ended for event %s: no notice asked for, nothing to send", payload["event_id"])
            return
        self._mail("access_ended", payload, "to", ("contract", "role", "reason", "revoked_at"), access_ended_values)

    @handler("invoice_issued")
    def on_invoice_issued(self, payload: Any) -> None:
        """Tell the contract's register address about a new invoice."""
        self._mail("invoice_issued", payload, "email", ("contract", "invoice", "period", "total", "due_date"),
                   lambda p, lang: {"contract": p["contract"], "invoice": p["invoice"], "period": p["period"],
                                    "total": money(p["total"], lang), "due_date": local_date(p["due_date"], lang),
                                    "estimated": ESTIMATED[lang] if p.get("estimated") else ""})

    @handler("payment_received")
    def on_payment_received(self, payload: Any) -> None:
        """Confirm a received payment to the contract's register address."""
        self._mail("payment_received", payload, "email", ("contract", "amount", "received_at"),
                   lambda p, lang: {"contract": p["contract"], "amount": money(p["amount"], lang),
                                    "received": local_date(p["received_at"], lang)})

    @handler("contract_registered")
    def on_contract_registered(self, payload: Any) -> None:
        """Remember where to write about a contract (the register's address)."""
        row = self.db.get(ContractContact, payload["contract"]) or ContractContact(contract=payload["contract"])
        row.email = payload["email"]
        row.holder_name = str(payload.get("holder_name") or "")
        row.updated_at = datetime.now(UTC)
        self.db.add(row)
        self.db.commit()

    @handler("reading_accepted")
    def on_reading_accepted(self, payload: Any) -> None:
        """Confirm an accepted reading to the contract's address (noting when it will be reviewed)."""
        self._contract_mail("reading_accepted", payload, ("meter", "read_on"),
                            lambda p, lang: {"contract": p["contract"], "meter": p["meter"], "value": p["value"],
                                             "read_on": local_date(p["read_on"], lang),
                                             "consumption": p["consumption_m3"],
                                             "flagged": FLAGGED[lang] if p.get("flagged") else ""})

    @handler("reading_rejected")
    def on_reading_rejected(self, payload: Any) -> None:
        """Say why a reading was not accepted."""
        self._contract_mail("reading_rejected", payload, ("meter", "reason"),
                            lambda p, lang: {"contract": p["contract"], "meter": p["meter"],
                                             "reason": REJECTION_REASONS[p["reason"]][lang]})

    @handler("reading_window_opened")
    def on_reading_window_opened(self, payload: Any) -> None:
        """Remind the contract to submit its reading, with a link to do it."""
        portal = self.config.get("PORTAL_URL", "http://127.0.0.1:3000")

        def values(p: dict[str, Any], lang: str) -> dict[str, Any]:
            return {"contract": p["contract"], "link": f"{portal}/c/{p['contract']}/readings",  # the portal's page
                    "closes": local_date(p["closes"], lang),
                    "unsubscribe": preferences.unsubscribe_link(self.config["PUBLIC_API_URL"],
                                                                self.config["LINK_SECRET"], p["email"])}

        self._contract_mail("reading_window_opened", payload, ("closes",), values)

    def _contract_mail(self, template: str, payload: dict[str, Any], fields: tuple[str, ...],
                       values: Callable[[dict[str, Any], str], dict[str, Any]]) -> None:
        """Send a contract-level message to the address the register holds for the contract."""
        contact = self.db.get(ContractContact, payload["contract"])
        self._mail(template, {**payload, "email": contact.email if contact else None}, "email", ("contract", *fields),
                   values)

    def _mail(self, template: str, payload: dict[str, Any], recipient: str, fields: tuple[str, ...],
              values: Callable[[dict[str, Any], str], dict[str, Any]]) -> None:
        """Render ``template`` for the event (its payload checked against the event's schema by the bus) and
        send it once; what cannot be written or is refused for good is ``Undeliverable``."""
        if not payload.get(recipient):
            log.info("%s for event %s: no address on file, nothing to send", template, payload["event_id"])
            return
        if not preferences.wants(self.db, template, payload[recipient]):
            log.info("%s for event %s: turned off by the recipient", template, payload["event_id"])
            return
        try:
            if not all(payload.get(k) not in (None, "") for k in fields):
                raise ValueError("fields missing")
            lang = payload.get("lang") or preferences.language_of(self.db, payload[recipient])
            lang = "en" if lang == "en" else "lv"  # the event's, else the person's choice, else Latvian
            message = render(template, lang, values(payload, lang))
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise Undeliverable(f"{template} cannot be written from this event: {exc}") from exc
        try:
            if deliver_once(self.db, self.mailer, event_id=payload["event_id"], template=template,
                            to=payload[recipient], message=message):
                log.info("%s sent for event %s", template, payload["event_id"])  # no address, no link in logs
        except smtplib.SMTPException as exc:
            if is_transient(exc):
                raise  # tried again with back-off by the bus handler
            log.warning("%s for event %s refused for good: %s", template, payload["event_id"], type(exc).__name__)
            raise Undeliverable(f"{template} refused by the mail server: {type(exc).__name__}") from exc
