"""E-mail templates, Latvian (default) and English, text and HTML. Dates in Europe/Riga."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
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


TEMPLATES["contact_email_verification"] = {
    "lv": ("Apstipriniet jauno e-pasta adresi",
           "Labdien!\n\nLai Klients portālā izmantotu šo e-pasta adresi, atveriet saiti:\n{link}\n\n"
           "Saite derīga līdz {deadline}. Līdz tam paliek spēkā iepriekšējā adrese."),
    "en": ("Confirm your new e-mail address",
           "Hello,\n\nTo use this address in the Klients portal, open the link:\n{link}\n\n"
           "The link is valid until {deadline}. Until then your previous address stays in use."),
}
TEMPLATES["contact_email_changed"] = {
    "lv": ("Jūsu e-pasta adrese nomainīta",
           "Labdien!\n\nJūsu Klients portāla e-pasta adrese nomainīta uz {new_email}. Ja to nedarījāt jūs, "
           "nekavējoties sazinieties ar klientu apkalpošanu."),
    "en": ("Your e-mail address was changed",
           "Hello,\n\nYour Klients portal e-mail address was changed to {new_email}. If this was not you, "
           "contact customer service at once."),
}
TEMPLATES["invoice_issued"] = {
    "lv": ("Jauns rēķins {invoice}",
           "Labdien!\n\nLīgumam {contract} izrakstīts rēķins {invoice} par periodu {period}.\n"
           "Summa apmaksai: {total}. Apmaksāt līdz {due_date}.\n{estimated}\n"
           "Rēķinu un maksāšanas iespējas redzēsiet portālā."),
    "en": ("New invoice {invoice}",
           "Hello,\n\nInvoice {invoice} for {period} has been issued for contract {contract}.\n"
           "Amount to pay: {total}, due by {due_date}.\n{estimated}\n"
           "You can see the invoice and pay it in the portal."),
}
TEMPLATES["payment_received"] = {
    "lv": ("Maksājums saņemts",
           "Labdien!\n\nSaņēmām jūsu maksājumu {amount} par līgumu {contract} ({received}). Paldies!"),
    "en": ("Payment received", "Hello,\n\nWe have received your payment of {amount} for contract {contract} "
                               "({received}). Thank you!"),
}
TEMPLATES["reading_accepted"] = {
    "lv": ("Rādījums pieņemts: {meter}",
           "Labdien!\n\nLīguma {contract} skaitītāja {meter} rādījums {value} m³ ({read_on}) ir pieņemts. "
           "Patēriņš kopš iepriekšējā rādījuma: {consumption} m³.{flagged}"),
    "en": ("Reading accepted: {meter}",
           "Hello,\n\nThe reading {value} m³ ({read_on}) of meter {meter} on contract {contract} has been "
           "accepted. Consumption since the previous reading: {consumption} m³.{flagged}"),
}
TEMPLATES["reading_rejected"] = {
    "lv": ("Rādījums nav pieņemts: {meter}",
           "Labdien!\n\nLīguma {contract} skaitītāja {meter} rādījums netika pieņemts: {reason}\n"
           "Lūdzu, pārbaudiet rādījumu un iesniedziet to vēlreiz portālā."),
    "en": ("Reading not accepted: {meter}",
           "Hello,\n\nThe reading of meter {meter} on contract {contract} was not accepted: {reason}\n"
           "Please check it and submit it again in the portal."),
}
TEMPLATES["reading_window_opened"] = {
    "lv": ("Laiks iesniegt skaitītāja rādījumu",
           "Labdien!\n\nLīgumam {contract} var iesniegt gāzes skaitītāja rādījumu līdz {closes}:\n{link}\n\n"
           "Ja nevēlaties saņemt atgādinājumus: {unsubscribe}"),
    "en": ("Time to submit your meter reading",
           "Hello,\n\nYou can submit the gas meter reading for contract {contract} until {closes}:\n{link}\n\n"
           "To stop these reminders: {unsubscribe}"),
}
REJECTION_REASONS = {
    "outside_window": {"lv": "rādījumus pieņem no mēneša 27. datuma līdz nākamā mēneša pirmajai darba dienai.",
                       "en": "readings are accepted from the 27th to the first working day of the next month."},
    "lower_than_previous": {"lv": "tas ir mazāks par iepriekšējo rādījumu.",
                            "en": "it is lower than the previous reading."},
}
FLAGGED = {"lv": " Rādījums ir neparasti liels, tāpēc to vēl pārbaudīsim.",
           "en": " The reading is unusually high, so we will check it."}
ESTIMATED = {"lv": "Patēriņš aprēķināts, jo rādījums nav saņemts.", "en": "Consumption was estimated: no reading was "
                                                                          "received."}


def money(amount: str, lang: str) -> str:
    """Return euros as Latvians write them (``1 234,56 €``) or in English (``€1,234.56``)."""
    value = Decimal(amount)
    if lang == "en":
        return f"€{value:,.2f}"
    return f"{value:,.2f}".replace(",", " ").replace(".", ",") + " €"


def local_date(value: str, lang: str) -> str:
    """Return an ISO date or timestamp as a date in Europe/Riga (``dd.mm.yyyy`` in Latvian)."""
    moment = datetime.fromisoformat(value)
    day = moment.astimezone(RIGA).date() if moment.tzinfo else moment.date()
    return f"{day:%d.%m.%Y}" if lang != "en" else f"{day:%-d %B %Y}"


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
    return Message(subject.format(**values), text,
                   f"<!doctype html><html><body><p>{html_body}</p></body></html>")
