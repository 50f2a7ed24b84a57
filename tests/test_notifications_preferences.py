"""A person's own choices reach notifications: the language of their messages and whether reminders come
(set through the API's contact details), and a text message to their phone when their e-mail address
changes (through the SMS provider interface; development's provider writes to the service log)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
import uuid
from pathlib import Path

import requests
from sqlalchemy import func, select

from klients_notifications.models import Delivery, Preference
from tests.support.access_helpers import now, plant_person, unique_email
from tests.support.helpers import bearer, mails
from tests.support.stack import publish_event, wait_until


def test_language_and_reminder_choices_reach_notifications(gateway, mint, maildir, notifications_sessions):
    email = unique_email("prefs")
    person, _ = plant_person(None, email=email)
    token = mint({}, subject=person)
    changed = gateway.patch("/api/v1/me/contact", json={"language": "en", "reminders": False}, headers=bearer(token))
    assert changed.status_code == 200 and changed.get_json()["reminders"] is False

    def stored() -> bool:
        with notifications_sessions() as session:
            row = session.get(Preference, email)
            return row is not None and (row.language, row.reminders) == ("en", False)

    wait_until("notifications to learn the choices", stored, timeout=15)
    # A payment confirmation names no language: the person's choice decides.
    publish_event("payment_received", {"event_id": str(uuid.uuid4()), "payment": "p", "contract": "LVG-100001",
                                       "amount": "12.34", "received_at": "2026-11-27T10:00:00+00:00", "email": email})
    wait_until("the payment mail", lambda: mails(maildir, to=email), timeout=15)
    assert "€12.34" in mails(maildir, to=email)[0].get_body(("plain",)).get_content()
    # Turning reminders back on is the person's to do, too.
    assert gateway.patch("/api/v1/me/contact", json={"reminders": True}, headers=bearer(token)).status_code == 200

    def back_on() -> bool:
        with notifications_sessions() as session:
            return session.get(Preference, email).reminders is True

    wait_until("reminders back on", back_on, timeout=15)


def test_a_changed_e_mail_address_is_also_told_to_the_phone_once(gateway, mint, maildir, notifications_sessions):
    old, new = unique_email("sms-old"), unique_email("sms-new")
    person, _ = plant_person(None, email=old)
    token = mint({}, subject=person)
    phone = f"+37129{secrets.randbelow(1_000_000):06d}"  # a number of this test's own (29…: a mobile range)
    assert gateway.patch("/api/v1/me/contact", json={"phone": phone}, headers=bearer(token)).status_code == 200
    started = now()
    gateway.patch("/api/v1/me/contact", json={"email": new}, headers=bearer(token))
    wait_until("the link", lambda: mails(maildir, to=new, after=started), timeout=20)
    link = re.search(r"(http://\S+)", mails(maildir, to=new, after=started)[0].get_body(("plain",)).get_content())
    assert requests.get(link.group(1), timeout=10).status_code == 200

    log = Path(os.environ["KLIENTS_VAR_DIR"]) / "log" / "notifications.log"

    def texts() -> list[dict]:
        lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
        return [entry for entry in lines if entry.get("logger") == "klients_notifications.sms" and new in entry["msg"]]

    wait_until("the text message", texts, timeout=15)
    entry = texts()[0]
    assert f"+371*****{phone[-3:]}" in entry["msg"] and phone[4:] not in entry["msg"]  # masked in the log
    time.sleep(1)
    with notifications_sessions() as session:
        sent = session.scalar(select(func.count()).select_from(Delivery).where(
            Delivery.template == "contact_email_changed_sms", Delivery.recipient == phone))
    assert sent == 1 and len(texts()) == 1
