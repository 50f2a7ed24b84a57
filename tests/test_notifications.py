"""Notifications against a real SMTP server and RabbitMQ: once per event (also with two instances),
retries with back-off while SMTP is down, dead letters for refusals and malformed events, re-sending."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from klients_notifications.models import Delivery
from tests.support.helpers import mails
from tests.support.stack import BIN, Stack, bus_uri, publish_event, wait_until

pytestmark = pytest.mark.usefixtures("stack")


def publish(payload: dict, event_type: str = "password_reset_requested") -> None:
    """Publish a service's event on the real bus, as its outbox relay does."""
    publish_event(event_type, payload)


def event(to: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "to": to, "link": f"http://127.0.0.1:18001/x/{uuid.uuid4().hex}",
            "expires_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(), "lang": "en"}


def address() -> str:
    return f"p-{uuid.uuid4().hex[:10]}@example.lv"


def test_the_same_event_twice_sends_one_mail(maildir, notifications_sessions):
    to = address()
    payload = event(to)
    publish(payload)
    publish(payload)
    wait_until("the mail", lambda: mails(maildir, to=to), timeout=15)
    time.sleep(1.5)
    [mail] = mails(maildir, to=to)
    assert mail["Subject"] == "Resetting your Klients portal password"
    assert payload["link"] in mail.get_body(("plain",)).get_content()
    assert payload["link"] in mail.get_body(("html",)).get_content()


def test_smtp_down_then_up_is_retried_and_delivered_once(smtp, maildir, notifications_sessions):
    to = address()
    payload = event(to)
    smtp.stop()
    try:
        publish(payload)

        def failed_once() -> bool:
            with notifications_sessions() as session:
                row = session.scalar(select(Delivery).where(Delivery.event_id == payload["event_id"]))
                return row is not None and row.status == "failed"

        wait_until("a failed first attempt", failed_once, timeout=15)
    finally:
        smtp.start()
    wait_until("the retried mail", lambda: mails(maildir, to=to), timeout=30)
    time.sleep(1)
    assert len(mails(maildir, to=to)) == 1
    with notifications_sessions() as session:
        row = session.scalar(select(Delivery).where(Delivery.event_id == payload["event_id"]))
        assert (row.status, row.attempts) == ("sent", 2)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "klients-notifications"), *args], capture_output=True, text=True, check=False,
                          env={**os.environ, "AMQP_URI": bus_uri("notifications")})


def dead_letter_of(event_id: str) -> list[dict]:
    """Return notifications' dead letters for ``event_id`` (the operators' listing, as JSON lines)."""
    listed = cli("dead-letters", "--json")
    assert listed.returncode == 0, listed.stderr
    return [letter for letter in map(json.loads, listed.stdout.splitlines()) if letter["id"] == event_id]


def test_a_refused_address_is_dead_lettered_listed_and_can_be_re_sent(maildir, notifications_sessions):
    payload = event(f"nobody-{uuid.uuid4().hex[:6]}@reject.invalid")
    publish(payload)
    wait_until("a dead letter", lambda: dead_letter_of(payload["event_id"]), timeout=15)
    [letter] = dead_letter_of(payload["event_id"])
    assert (letter["event"], letter["reason"]) == ("password_reset_requested", "rejected")
    assert letter["queue"] == "evt-identity-password_reset_requested--notifications.on_password_reset"
    listed = cli("dead-letters")
    assert payload["event_id"] in listed.stdout and payload["link"] not in listed.stdout  # nothing secret listed
    resent = cli("resend", payload["event_id"])
    assert resent.returncode == 0 and "1 dead letter(s) put back" in resent.stdout
    # Back on its queue with its producer's user id, tried again (refused again), dead-lettered again.
    wait_until("the second attempt", lambda: notifications_attempts(notifications_sessions, payload) == 2, timeout=15)
    wait_until("the second dead letter", lambda: dead_letter_of(payload["event_id"]), timeout=15)
    [again] = dead_letter_of(payload["event_id"])  # still named by where it died, now twice
    assert (again["event"], again["queue"], again["times"]) == (letter["event"], letter["queue"], 2)


def notifications_attempts(notifications_sessions, payload: dict) -> int | None:
    with notifications_sessions() as session:
        return session.scalar(select(Delivery.attempts).where(Delivery.event_id == payload["event_id"]))


def test_a_malformed_event_is_dead_lettered_and_the_service_keeps_going(maildir, notifications_sessions):
    broken = {"event_id": str(uuid.uuid4()), "to": 42}
    publish(broken)
    wait_until("the malformed dead letter", lambda: dead_letter_of(broken["event_id"]), timeout=15)
    assert "invalid_payload" in dead_letter_of(broken["event_id"])[0]["why"]
    assert notifications_attempts(notifications_sessions, broken) is None  # never reached the handler
    to = address()
    publish(event(to))
    wait_until("the next mail", lambda: mails(maildir, to=to), timeout=15)


def test_two_instances_send_each_mail_once(maildir):
    second = Stack()
    second.start("notifications-2", sys.executable, "-m", "klients_notifications.cli", "run", component="notifications")
    try:
        time.sleep(3)  # let the second instance join the queue
        addresses = [address() for _ in range(12)]
        for to in addresses:
            payload = event(to)
            publish(payload)
            publish(payload)  # at-least-once: every event delivered twice
        wait_until("all mails", lambda: all(mails(maildir, to=to) for to in addresses), timeout=30)
        time.sleep(1.5)
        assert [len(mails(maildir, to=to)) for to in addresses] == [1] * 12
    finally:
        second.stop_all()


@pytest.mark.parametrize(("lang", "subject", "amount", "due"), [
    ("lv", "Jauns rēķins", "1 234,56 €", "20.12.2026"),
    ("en", "New invoice", "€1,234.56", "20 December 2026"),
])
def test_invoice_issued_mail_in_the_recipients_language(maildir, lang, subject, amount, due):
    to = address()
    payload = {"event_id": str(uuid.uuid4()), "contract": "LVG-100001", "invoice": "202611-LVG-100001",
               "period": "2026-11", "total": "1234.56", "due_date": "2026-12-20", "estimated": True, "email": to,
               "lang": lang}
    publish(payload, "invoice_issued")
    wait_until("the invoice mail", lambda: mails(maildir, to=to), timeout=15)
    [mail] = mails(maildir, to=to)
    text = mail.get_body(("plain",)).get_content()
    assert mail["Subject"] == f"{subject} 202611-LVG-100001" and amount in text and due in text and "{" not in text
    assert "202611-LVG-100001" in mail.get_body(("html",)).get_content()


def test_payment_received_mail_and_a_contract_without_an_address_sends_nothing(maildir, notifications_sessions):
    to = address()
    publish({"event_id": str(uuid.uuid4()), "payment": "p", "contract": "LVG-100001", "amount": "12.34",
                      "received_at": "2026-11-27T10:00:00+00:00", "email": to}, "payment_received")
    silent = {"event_id": str(uuid.uuid4()), "payment": "p", "contract": "LVG-100001", "amount": "1.00",
              "received_at": "2026-11-27T10:00:00+00:00", "email": None}
    publish(silent, "payment_received")
    wait_until("the payment mail", lambda: mails(maildir, to=to), timeout=15)
    assert "12,34 €" in mails(maildir, to=to)[0].get_body(("plain",)).get_content()
    time.sleep(1)
    with notifications_sessions() as session:
        assert session.scalar(select(Delivery).where(Delivery.event_id == silent["event_id"])) is None
    assert dead_letter_of(silent["event_id"]) == []



def test_reading_e_mails_go_to_the_contracts_address(gateway, mint, maildir):
    """A reading submitted through the gateway is confirmed to LVG-100003's register address; a lower
    one that was not confirmed as a roll-over is explained."""
    to = "janis.berzins@demo.klients.lv"
    owner = {"Authorization": f"Bearer {mint({'LVG-100003': 'owner'})}"}
    url = "/api/v1/contracts/LVG-100003/meters/G4-2019-000103/readings"
    last = max(r["value"] for r in gateway.get(url, headers=owner).get_json()["items"] if r["current"])

    def reading_mails():
        return [m for m in mails(maildir, to=to) if m["Subject"].startswith("Rādījums")]

    assert reading_mails() == []
    # Under MIN_FLAGGED_M3 (10 m³), so never "unusually high" whatever the date and the history.
    first = gateway.post(url, json={"value": last + 9}, headers=owner)
    assert first.status_code == 201, first.get_json()
    assert gateway.post(url, json={"value": 1}, headers=owner).status_code == 422
    wait_until("both reading mails", lambda: len(reading_mails()) == 2, timeout=20)
    subjects = sorted(m["Subject"] for m in reading_mails())
    assert subjects == ["Rādījums nav pieņemts: G4-2019-000103", "Rādījums pieņemts: G4-2019-000103"]
    texts = " ".join(m.get_body(("plain",)).get_content() for m in reading_mails())
    assert "9 m³" in texts and "mazāks par iepriekšējo" in texts


def test_window_reminder_links_to_the_portal(maildir):
    publish({"event_id": str(uuid.uuid4()), "contract": "LVG-100004", "period": "2026-11",
             "opens": "2026-11-26T22:00:00+00:00", "closes": "2026-12-01T22:00:00+00:00"},
            "reading_window_opened")
    def ours() -> list:  # the reminder this test caused (other tests open other windows)
        return [m for m in mails(maildir, to="anna.kalnina@demo.klients.lv")
                if m["Subject"] == "Laiks iesniegt skaitītāja rādījumu"
                and "02.12.2026" in m.get_body(("plain",)).get_content()]  # 22:00 UTC 1 Dec is 2 Dec in Riga

    wait_until("the reminder", lambda: ours(), timeout=15)
    assert f"{os.environ['PORTAL_URL']}/c/LVG-100004/readings" in ours()[0].get_body(("plain",)).get_content()


def test_reminders_can_be_turned_off_from_the_link_but_security_mail_still_comes(gateway, maildir):
    """LVG-100002's address turns reminders off with the link in a reminder; the next reminder is not sent,
    a password-reset mail to the same address still is."""
    from urllib.parse import parse_qs, urlparse

    to = "new.format@demo.klients.lv"

    def reminder(event_id: str) -> None:
        publish({"event_id": event_id, "contract": "LVG-100002", "period": "2027-02",
                 "opens": "2027-02-26T22:00:00+00:00", "closes": "2027-03-01T22:00:00+00:00"},
                "reading_window_opened")

    def reminders() -> list:  # this test's window only (other tests open other windows)
        return [m for m in mails(maildir, to=to) if m["Subject"] == "Laiks iesniegt skaitītāja rādījumu"
                and "02.03.2027" in m.get_body(("plain",)).get_content()]

    reminder(str(uuid.uuid4()))
    wait_until("the first reminder", lambda: len(reminders()) == 1, timeout=15)
    link = re.search(r"(http://\S+unsubscribe\S+)", reminders()[0].get_body(("plain",)).get_content()).group(1)
    query = parse_qs(urlparse(link).query)
    forged = gateway.get("/api/v1/notifications/unsubscribe", query_string={"email": to, "sig": "0" * 64})
    assert forged.status_code == 422 and forged.mimetype == "application/problem+json"
    done = gateway.get("/api/v1/notifications/unsubscribe", query_string={k: v[0] for k, v in query.items()})
    assert done.status_code == 200 and done.get_json()["reminders"] == "off"

    reminder(str(uuid.uuid4()))
    security = event(to)
    publish(security)
    wait_until("the security mail", lambda: any(security["link"] in m.get_body(("plain",)).get_content()
                                                for m in mails(maildir, to=to)), timeout=15)
    time.sleep(1)
    assert len(reminders()) == 1


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_access_events_become_mails_in_the_recipients_language(maildir, lang):
    invitee, owner, former = address(), address(), address()
    link = f"http://127.0.0.1:18001/invite/{uuid.uuid4().hex}"
    publish({"event_id": str(uuid.uuid4()), "to": invitee, "lang": lang, "name": "Pēteris Kalns",
             "contract": "LVG-100001", "role": "subuser", "level": "bills", "invited_by": "Ērika Šķēle",
             "valid_until": "2027-01-31", "link": link, "expires_at": "2026-11-30T02:00:00+00:00"},
            "invitation_created")
    publish({"event_id": str(uuid.uuid4()), "to": owner, "lang": lang, "name": "Ērika Šķēle",
             "invitee": "Pēteris Kalns", "contract": "LVG-100001", "role": "subuser", "level": "bills",
             "grant": str(uuid.uuid4())}, "invitation_accepted_notice")
    revoked = {"actor": "p-1", "subject": "p-2", "contract": "LVG-100001", "role": "subuser", "reason": "revoked",
               "revoked_at": datetime.now(UTC).isoformat(), "to": former, "lang": lang, "name": "Pēteris Kalns",
               "grant": str(uuid.uuid4()), "as_role": "owner"}
    publish({**revoked, "event_id": str(uuid.uuid4()), "notify": False}, "grant_revoked")  # e.g. rights narrowed
    publish({**revoked, "event_id": str(uuid.uuid4()), "notify": True}, "grant_revoked")
    for to in (invitee, owner, former):
        wait_until(f"the mail to {to}", lambda t=to: mails(maildir, to=t), timeout=15)
    time.sleep(1)
    [invitation] = mails(maildir, to=invitee)
    assert invitation["Subject"] == {"lv": "Uzaicinājums piekļūt līgumam LVG-100001",
                                     "en": "Invitation to access contract LVG-100001"}[lang]
    assert link in invitation.get_body(("plain",)).get_content()
    assert f'href="{link}"' in invitation.get_body(("html",)).get_content()
    assert {"lv": "30.11.2026", "en": "30"}[lang] in invitation.get_body(("plain",)).get_content()
    [accepted] = mails(maildir, to=owner)
    assert "Pēteris Kalns" in accepted.get_body(("plain",)).get_content()
    [ended] = mails(maildir, to=former)  # the notify=False event sent nothing
    assert "LVG-100001" in ended["Subject"]
