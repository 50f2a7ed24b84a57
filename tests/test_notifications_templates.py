"""Every template renders in Latvian and English from a real event payload, with nothing left unfilled."""

from __future__ import annotations

import re

import pytest

from klients_notifications.templates import ESTIMATED, TEMPLATES, local_date, money, render, riga_time

VALUES = {
    "email_verification": {"link": "http://127.0.0.1:8001/login/email/register/abc", "deadline":
                           riga_time("2026-11-27T22:30:00+00:00")},
    "password_reset": {"link": "http://127.0.0.1:8001/login/email/reset/abc", "deadline":
                       riga_time("2026-11-27T22:30:00+00:00")},
    "contact_email_verification": {"link": "http://127.0.0.1:8001/login/email/contact/abc",
                                   "deadline": riga_time("2026-11-27T22:30:00+00:00")},
    "contact_email_changed": {"new_email": "new@example.lv"},
    "invoice_issued": {"contract": "LVG-100001", "invoice": "202611-LVG-100001", "period": "2026-11",
                       "total": "1234.56", "due_date": "2026-12-20", "estimated": "x"},
    "payment_received": {"contract": "LVG-100001", "amount": "12.34", "received": "2026-11-27T10:00:00+00:00"},
    "reading_accepted": {"contract": "LVG-100001", "meter": "G4-1", "value": 1234, "read_on": "27.11.2026",
                         "consumption": 95, "flagged": ""},
    "reading_rejected": {"contract": "LVG-100001", "meter": "G4-1", "reason": "it is lower"},
    "reading_window_opened": {"contract": "LVG-100001", "closes": "01.12.2026", "link": "http://portal/readings",
                              "unsubscribe": "http://api/api/v1/notifications/unsubscribe?email=a&sig=b"},
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
