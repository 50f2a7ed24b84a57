"""The local SMTP server keeps every mail as a file that parses back to the message sent."""

from __future__ import annotations

import os
import smtplib
from email.message import EmailMessage

from tests.support.helpers import mails
from tests.support.stack import wait_until


def test_mail_is_kept_as_a_file(maildir):
    message = EmailMessage()
    message["From"] = "noreply@klients.lv"
    message["To"] = "anna.kalnina@demo.klients.lv"
    message["Subject"] = "Rēķins par gāzi"
    message.set_content("Summa apmaksai: 12,34 €")
    with smtplib.SMTP("127.0.0.1", int(os.environ["SMTP_PORT"]), timeout=5) as smtp:
        smtp.send_message(message)
    def ours():  # other tests' mail lands in the same folder
        return mails(maildir, to="anna.kalnina@demo.klients.lv", subject="Rēķins par gāzi")

    wait_until("mail file", ours, timeout=5)
    [stored] = ours()
    assert stored["X-Klients-Envelope-To"] == "anna.kalnina@demo.klients.lv"
    assert stored["Subject"] == "Rēķins par gāzi"
    assert stored.get_content().strip() == "Summa apmaksai: 12,34 €"
