"""The e-mail login's steps as a browser takes them: the link mails identity sends (over real SMTP, through
notifications), the link in one, and setting a password from it."""

from __future__ import annotations

import re

import requests

from tests.support.helpers import csrf_of, mails
from tests.support.oidc_helpers import ISSUER
from tests.support.stack import wait_until

LINK_SUBJECTS = ("Apstipriniet e-pastu Klients portālā", "Paroles maiņa Klients portālā")


def mail_to(maildir, address: str, after: float):
    """Wait for the link e-mail to ``address`` sent after ``after`` (invoices and reminders go there too)."""
    wait_until(f"mail to {address}", lambda: mails(maildir, to=address, subject=LINK_SUBJECTS, after=after),
               timeout=20)
    return mails(maildir, to=address, subject=LINK_SUBJECTS, after=after)[0]


def link_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"(http://\S+)", text).group(1)


def set_password(browser: requests.Session, link: str, password: str, again: str | None = None):
    opened = browser.get(link, allow_redirects=True, timeout=10)
    assert opened.status_code == 200, opened.text[:300]
    return browser.post(f"{ISSUER}/login/email/password", timeout=10, allow_redirects=False,
                        data={"csrf": csrf_of(opened), "password": password, "password2": again or password})
