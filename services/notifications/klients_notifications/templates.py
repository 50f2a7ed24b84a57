"""E-mail templates, Latvian (default) and English, text and HTML. Dates in Europe/Riga."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from klients_common.riga import RIGA


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
TEMPLATES["contact_email_changed_sms"] = {  # a text message: only the text, in GSM-7 letters (one SMS, not three)
    "lv": ("Klients", "Klients: jusu e-pasta adrese nomainita uz {new_email}. Ja to nedarijat jus, zvaniet "
                      "klientu apkalposanai."),
    "en": ("Klients", "Klients: your e-mail address was changed to {new_email}. If this was not you, call "
                      "customer service."),
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
TEMPLATES["invitation"] = {
    "lv": ("Uzaicinājums piekļūt līgumam {contract}",
           "{greeting}\n\n{inviter} jūs uzaicināja piekļūt gāzes līgumam {contract} Klients portālā. {rights}{until}"
           "\n\nLai pieņemtu uzaicinājumu, atveriet saiti līdz {deadline}:\n{link}\n\n{steps}\n\n"
           "Ja šo uzaicinājumu negaidījāt, vēstuli varat neņemt vērā."),
    "en": ("Invitation to access contract {contract}",
           "{greeting}\n\n{inviter} has invited you to access gas contract {contract} in the Klients portal. "
           "{rights}{until}\n\nTo accept the invitation, open the link before {deadline}:\n{link}\n\n{steps}\n\n"
           "If you did not expect this invitation, you can ignore this e-mail."),
}
TEMPLATES["invitation_accepted"] = {
    "lv": ("Uzaicinājums pieņemts: līgums {contract}",
           "{greeting}\n\n{invitee} pieņēma uzaicinājumu un tagad var piekļūt līgumam {contract} Klients portālā.\n"
           "Piekļuve: {access}.\n\nLietotājus un viņu tiesības varat pārskatīt, mainīt vai atsaukt portālā. "
           "Ja šo piekļuvi negaidījāt, nekavējoties to atsauciet vai sazinieties ar klientu apkalpošanu."),
    "en": ("Invitation accepted: contract {contract}",
           "{greeting}\n\n{invitee} has accepted the invitation and can now access contract {contract} in the "
           "Klients portal.\nAccess: {access}.\n\nYou can review, change or revoke users and their rights in the "
           "portal. If you did not expect this, revoke the access at once or contact customer service."),
}
TEMPLATES["access_ended"] = {
    "lv": ("Piekļuve līgumam {contract} ir beigusies",
           "{greeting}\n\nJūsu piekļuve līgumam {contract} Klients portālā ({role}) beidzās {ended}: {cause}\n"
           "Portālā šo līgumu vairs nevarat skatīt un ar to darboties.\n\n"
           "Ja piekļuve jums joprojām ir nepieciešama vai uzskatāt, ka tā ir kļūda, sazinieties ar līguma turētāju "
           "vai klientu apkalpošanu."),
    "en": ("Your access to contract {contract} has ended",
           "{greeting}\n\nYour access to contract {contract} in the Klients portal as {role} ended on {ended}: "
           "{cause}\nYou can no longer see this contract or act on it in the portal.\n\n"
           "If you still need access or think this is a mistake, contact the contract holder or customer service."),
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

INVITED_BY_SUPPLIER = {"lv": "Piegādātāja klientu apkalpošana", "en": "The supplier's customer service"}
INVITATION_RIGHTS = {
    "bills": {"lv": "Jūs varēsiet skatīt un apmaksāt rēķinus.", "en": "You will be able to view and pay bills."},
    "bills_readings": {"lv": "Jūs varēsiet skatīt un apmaksāt rēķinus, nodot skaitītāja rādījumus un skatīt "
                             "patēriņu.",
                       "en": "You will be able to view and pay bills, submit meter readings and see consumption."},
    "delegate": {"lv": "Jūs varēsiet rīkoties kā līguma turētāja pilnvarotā persona ar visām tiesībām, arī "
                       "pārvaldīt lietotājus.",
                 "en": "You will be able to act as the holder's authorised person with all rights, including "
                       "managing users."},
}
INVITATION_UNTIL = {"lv": " Piekļuve būs derīga līdz {date}.", "en": " The access will be valid until {date}."}
INVITATION_STEPS = {
    "subuser": {"lv": "Tur izvēlēsieties paroli un apstiprināsiet savu identitāti ar internetbanku, eParakstu vai "
                      "Smart-ID.",
                "en": "There you will choose a password and confirm your identity with your internet bank, "
                      "eParaksts or Smart-ID."},
    "delegate": {"lv": "Tur apstiprināsiet savu identitāti ar internetbanku, eParakstu vai Smart-ID.",
                 "en": "There you will confirm your identity with your internet bank, eParaksts or Smart-ID."},
}
ACCESS = {
    "bills": {"lv": "papildu lietotājs ar tiesībām skatīt un apmaksāt rēķinus",
              "en": "an additional user who can view and pay bills"},
    "bills_readings": {"lv": "papildu lietotājs ar tiesībām skatīt un apmaksāt rēķinus, nodot skaitītāja "
                             "rādījumus un skatīt patēriņu",
                       "en": "an additional user who can view and pay bills, submit meter readings and see "
                             "consumption"},
    "delegate": {"lv": "līguma turētāja pilnvarotā persona ar visām tiesībām, arī lietotāju pārvaldību",
                 "en": "the holder's authorised person with all rights, including managing users"},
}
ENDED_ROLE = {"subuser": {"lv": "papildu lietotāja tiesības", "en": "an additional user"},
              "delegate": {"lv": "pilnvarotās personas tiesības", "en": "the holder's authorised person"},
              "owner": {"lv": "līguma turētāja tiesības", "en": "the contract holder"}}
ENDED_CAUSE = {
    "period": {"lv": "ir pagājis noteiktais piekļuves termiņš.", "en": "the period of your access is over."},
    "self": {"lv": "jūs no tās atteicāties.", "en": "you gave it up."},
    "owner": {"lv": "to atsauca līguma turētājs.", "en": "it was revoked by the contract holder."},
    "delegate": {"lv": "to atsauca līguma turētāja pilnvarotā persona.",
                 "en": "it was revoked by the holder's authorised person."},
    "operator": {"lv": "to atsauca klientu apkalpošana.", "en": "it was revoked by customer service."},
    "other": {"lv": "to atsauca līguma turētājs, pilnvarotā persona vai klientu apkalpošana.",
              "en": "it was revoked by the contract holder, their authorised person or customer service."},
}


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


def greeting(name: Any, lang: str) -> str:
    """Return the salutation, by name when the event gives one."""
    name = name.strip() if isinstance(name, str) else ""
    if lang == "en":
        return f"Hello {name}," if name else "Hello,"
    return f"Labdien, {name}!" if name else "Labdien!"


def access_kind(role: str, level: str | None) -> str:
    """Return what a grant lets its person do: the sub-user's level, or ``delegate``; raise ValueError."""
    if role == "delegate":
        return "delegate"
    if role == "subuser" and level in ("bills", "bills_readings"):
        return str(level)
    raise ValueError(f"unknown access {role!r}/{level!r}")


def invitation_values(p: dict[str, Any], lang: str) -> dict[str, Any]:
    """Return the ``invitation`` template's values for an ``identity.invitation_created`` event."""
    until = p.get("valid_until")
    return {"greeting": greeting(p.get("name"), lang), "contract": p["contract"],
            "inviter": str(p.get("invited_by") or "").strip() or INVITED_BY_SUPPLIER[lang],
            "rights": INVITATION_RIGHTS[access_kind(p["role"], p.get("level"))][lang],
            "until": INVITATION_UNTIL[lang].format(date=local_date(until, lang)) if until else "",
            "link": p["link"], "deadline": riga_time(p["expires_at"]), "steps": INVITATION_STEPS[p["role"]][lang]}


def invitation_accepted_values(p: dict[str, Any], lang: str) -> dict[str, Any]:
    """Return the ``invitation_accepted`` template's values for an ``identity.invitation_accepted`` event."""
    return {"greeting": greeting(p.get("name"), lang), "invitee": p["invitee"], "contract": p["contract"],
            "access": ACCESS[access_kind(p["role"], p.get("level"))][lang]}


def access_ended_values(p: dict[str, Any], lang: str) -> dict[str, Any]:
    """Return the ``access_ended`` template's values for an ``identity.grant_revoked`` event: the end of the
    access period reads differently from a revocation (by whom, as far as the event says)."""
    actor, subject = p.get("actor"), p.get("subject")
    if p["reason"] == "end date passed":
        cause = "period"
    elif isinstance(actor, str) and actor and actor == subject:
        cause = "self"
    else:
        cause = p.get("as_role") if p.get("as_role") in ("owner", "delegate", "operator") else "other"
    return {"greeting": greeting(p.get("name"), lang), "contract": p["contract"],
            "role": ENDED_ROLE[p["role"]][lang], "ended": local_date(p["revoked_at"], lang),
            "cause": ENDED_CAUSE[cause][lang]}


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
