"""Every template renders in Latvian and English from a real event payload, with nothing left unfilled."""

from __future__ import annotations

import re

import pytest

from klients_notifications import preferences
from klients_notifications.templates import (
    ESTIMATED,
    TEMPLATES,
    access_ended_values,
    invitation_accepted_values,
    invitation_values,
    local_date,
    money,
    render,
    riga_time,
)

INVITATION = {"event_id": "e1", "to": "invitee@example.lv", "lang": "lv", "name": "Anna Bērziņa",
              "contract": "LVG-100001", "role": "subuser", "level": "bills_readings", "invited_by": "Jānis Kalniņš",
              "valid_until": "2027-01-31", "link": "http://127.0.0.1:8001/invite/abc",
              "expires_at": "2026-11-30T02:00:00+00:00"}
ACCEPTED = {"event_id": "e2", "to": "owner@example.lv", "lang": "lv", "name": "Jānis Kalniņš",
            "invitee": "Anna Bērziņa", "contract": "LVG-100001", "role": "subuser", "level": "bills",
            "grant": "4c1e0c0e-0000-4000-8000-000000000001"}
REVOKED = {"event_id": "e3", "actor": "owner-1", "subject": "person-2", "contract": "LVG-100001", "role": "subuser",
           "reason": "revoked", "revoked_at": "2026-11-27T10:00:00+00:00", "notify": True, "to": "anna@example.lv",
           "lang": "lv", "name": "Anna Bērziņa", "grant": "4c1e0c0e-0000-4000-8000-000000000001", "as_role": "owner"}

VALUES = {
    "email_verification": {"link": "http://127.0.0.1:8001/login/email/register/abc", "deadline":
                           riga_time("2026-11-27T22:30:00+00:00")},
    "password_reset": {"link": "http://127.0.0.1:8001/login/email/reset/abc", "deadline":
                       riga_time("2026-11-27T22:30:00+00:00")},
    "contact_email_verification": {"link": "http://127.0.0.1:8001/login/email/contact/abc",
                                   "deadline": riga_time("2026-11-27T22:30:00+00:00")},
    "contact_email_changed": {"new_email": "new@example.lv"},
    "contact_email_changed_sms": {"new_email": "new@example.lv"},
    "invoice_issued": {"contract": "LVG-100001", "invoice": "202611-LVG-100001", "period": "2026-11",
                       "total": "1234.56", "due_date": "2026-12-20", "estimated": "x"},
    "payment_received": {"contract": "LVG-100001", "amount": "12.34", "received": "2026-11-27T10:00:00+00:00"},
    "reading_accepted": {"contract": "LVG-100001", "meter": "G4-1", "value": 1234, "read_on": "27.11.2026",
                         "consumption": 95, "flagged": ""},
    "reading_rejected": {"contract": "LVG-100001", "meter": "G4-1", "reason": "it is lower"},
    "reading_window_opened": {"contract": "LVG-100001", "closes": "01.12.2026", "link": "http://portal/readings",
                              "unsubscribe": "http://api/api/v1/notifications/unsubscribe?email=a&sig=b"},
    "invitation": invitation_values(INVITATION, "lv"),
    "invitation_accepted": invitation_accepted_values(ACCEPTED, "en"),
    "access_ended": access_ended_values(REVOKED, "lv"),
}


@pytest.mark.parametrize("lang", ["lv", "en"])
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_renders_completely(template, lang):
    message = render(template, lang, VALUES[template])
    for part in (message.subject, message.text, message.html):
        assert not re.search(r"\{[a-z_]+\}", part), part
    assert message.html.startswith("<!doctype html>")


def test_money_and_dates_as_each_language_writes_them():
    assert money("1234.5", "lv") == "1 234,50 €" and money("1234.5", "en") == "€1,234.50"
    assert local_date("2026-12-31T23:30:00+00:00", "lv") == "01.01.2027"  # Riga is two hours ahead
    assert riga_time("2026-07-01T21:15:00+00:00") == "02.07.2026 00:15"  # summer time: three hours
    assert ESTIMATED["lv"] and ESTIMATED["en"]


def test_html_escapes_what_the_event_says():
    message = render("invoice_issued", "en", {**VALUES["invoice_issued"], "contract": "<script>x</script>"})
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html


@pytest.mark.parametrize(("lang", "until", "rights"), [
    ("lv", "31.01.2027", "nodot skaitītāja rādījumus un skatīt patēriņu"),
    ("en", "31 January 2027", "view and pay bills, submit meter readings and see consumption"),
])
def test_invitation_gives_the_link_the_deadline_and_the_rights(lang, until, rights):
    message = render("invitation", lang, invitation_values(INVITATION, lang))
    assert INVITATION["link"] in message.text and f'href="{INVITATION["link"]}"' in message.html
    assert "30.11.2026 04:00" in message.text  # the link's deadline, Riga time
    assert rights in message.text and until in message.text and "Jānis Kalniņš" in message.text
    assert "Smart-ID" in message.text and "LVG-100001" in message.subject
    bills = render("invitation", lang, invitation_values({**INVITATION, "level": "bills"}, lang)).text
    assert rights not in bills and ("rēķinus." in bills if lang == "lv" else "view and pay bills." in bills)
    delegate = render("invitation", lang, invitation_values(
        {**INVITATION, "role": "delegate", "level": None, "invited_by": "", "valid_until": None}, lang)).text
    assert ("pilnvarotā persona" if lang == "lv" else "authorised person") in delegate
    assert ("klientu apkalpošana" if lang == "lv" else "customer service") in delegate
    assert until not in delegate and ("paroli" if lang == "lv" else "password") not in delegate


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_access_ended_tells_a_lapsed_period_from_a_revocation(lang):
    revoked = render("access_ended", lang, access_ended_values(REVOKED, lang)).text
    lapsed = render("access_ended", lang, access_ended_values(
        {**REVOKED, "reason": "end date passed", "actor": "system", "as_role": "system"}, lang)).text
    assert ("atsauca līguma turētājs" if lang == "lv" else "revoked by the contract holder") in revoked
    assert ("termiņš" if lang == "lv" else "period") in lapsed and "atsauca" not in lapsed and "revoked" not in lapsed


def test_access_messages_cannot_be_turned_off():
    assert not {"invitation", "invitation_accepted", "access_ended"} & preferences.REMINDER_TEMPLATES
    assert preferences.wants(None, "access_ended", "anna@example.lv")  # decided before the database is asked


@pytest.mark.parametrize("lang", ["lv", "en"])
def test_a_text_message_fits_one_sms(lang):
    """160 characters of the GSM 7-bit alphabet (Latvian letters would make it a three-part UCS-2 message)."""
    text = render("contact_email_changed_sms", lang, {"new_email": "a.very.long.name@example.lv"}).text
    assert len(text) <= 160 and text.isascii()
