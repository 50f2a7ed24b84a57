"""E-mail templates, Latvian (default) and English, text and HTML. Dates in Europe/Riga."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

RIGA = ZoneInfo("Europe/Riga")


@dataclass(frozen=True)
class Message:
    """A rendered e-mail."""

    subject: str
    text: str
    html: str


TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "email_verification": {
        "lv": ("Apstipriniet e-pastu Klients portālā",
               "Labdien!\n\nLai pabeigtu reģistrāciju, atveriet saiti un izvēlieties paroli:\n{link}\n\n"
               "Saite derīga līdz {deadline}. Ja reģistrāciju nepieprasījāt, šo vēstuli varat neņemt vērā."),
        "en": ("Confirm your e-mail for the Klients portal",
               "Hello,\n\nTo finish registering, open the link and choose a password:\n{link}\n\n"
               "The link is valid until {deadline}. If you did not ask to register, ignore this e-mail."),
    },
    "password_reset": {
        "lv": ("Paroles maiņa Klients portālā",
               "Labdien!\n\nLai iestatītu jaunu paroli, atveriet saiti:\n{link}\n\nSaite derīga līdz {deadline}. "
               "Ja paroles maiņu nepieprasījāt, šo vēstuli varat neņemt vērā; jūsu parole nav mainīta."),
        "en": ("Resetting your Klients portal password",
               "Hello,\n\nTo set a new password, open the link:\n{link}\n\nThe link is valid until {deadline}. "
               "If you did not ask for this, ignore this e-mail; your password has not changed."),
    },
}


def riga_time(value: str) -> str:
    """Return an ISO timestamp as Riga local time, ``dd.mm.yyyy hh:mm``."""
    return datetime.fromisoformat(value).astimezone(RIGA).strftime("%d.%m.%Y %H:%M")


def render(template: str, lang: str, values: dict[str, Any]) -> Message:
    """Render ``template`` in ``lang`` (Latvian unless ``en``)."""
    subject, body = TEMPLATES[template]["en" if lang == "en" else "lv"]
    text = body.format(**values)
    html_body = escape(text).replace("\n", "<br>\n")
    link = values.get("link")
    if link:
        html_body = html_body.replace(escape(link), f'<a href="{escape(link)}">{escape(link)}</a>')
    return Message(subject, text, f"<!doctype html><html><body><p>{html_body}</p></body></html>")
