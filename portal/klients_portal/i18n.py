"""The portal's words in Latvian (the default) and English, and how money, dates and times are shown
(Europe/Riga)."""

from __future__ import annotations

from datetime import date as date_type
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import g

from klients_common.riga import RIGA

LANGS = ("lv", "en")
DEFAULT = "lv"

TEXT: dict[str, tuple[str, str]] = {
    # frame
    "brand": ("Klients", "Klients"),
    "skip": ("Pāriet uz saturu", "Skip to content"),
    "switch_to": ("English", "Latviski"),
    "login": ("Pieslēgties", "Log in"),
    "logout": ("Iziet", "Log out"),
    "contracts": ("Līgumi", "Contracts"),
    "overview": ("Pārskats", "Overview"),
    "bills": ("Rēķini", "Bills"),
    "readings": ("Skaitītāja rādījumi", "Meter readings"),
    "consumption": ("Patēriņš", "Consumption"),
    "users": ("Lietotāji", "Users"),
    "contact": ("Kontaktinformācija", "Contact details"),
    "main_nav": ("Galvenā izvēlne", "Main menu"),
    "contract_nav": ("Līguma sadaļas", "Contract sections"),
    # landing and login
    "landing_title": ("Klientu portāls", "Client portal"),
    "landing_text": ("Apskatiet un apmaksājiet rēķinus, nododiet skaitītāja rādījumus un pārvaldiet, kas var "
                     "piekļūt jūsu līgumam.",
                     "See and pay your bills, submit meter readings and manage who can access your contract."),
    "landing_methods": ("Pieslēgties var ar Smart-ID, eParakstu, internetbanku vai e-pastu un paroli.",
                        "Log in with Smart-ID, eParaksts, your internet bank or e-mail and password."),
    "signed_out": ("Jūs esat izgājis no portāla.", "You have logged out."),
    "denied_title": ("Pieslēgšanās netika pabeigta", "The login was not completed"),
    "denied_text": ("Pieslēgšanās tika atcelta vai atteikta. Jūs varat mēģināt vēlreiz vai izvēlēties citu "
                    "veidu.", "The login was cancelled or refused. You can try again or choose another way."),
    "login_required_title": ("Lūdzu, pieslēdzieties", "Please log in"),
    "login_required_text": ("Jūsu pieslēgšanās vairs nav spēkā. Pieslēdzieties vēlreiz, lai turpinātu.",
                            "Your login is no longer valid. Log in again to continue."),
    "login_failed_title": ("Pieslēgšanās neizdevās", "The login failed"),
    "login_failed_text": ("Pieslēgšanās pieprasījums ir novecojis vai nepilnīgs. Sāciet no jauna.",
                          "The login request was out of date or incomplete. Please start again."),
    "try_again": ("Mēģināt vēlreiz", "Try again"),
    "to_start": ("Uz sākumu", "To the start"),
    "expired_title": ("Sesija ir beigusies", "Your session has ended"),
    "expired_text": ("Drošības dēļ jūsu sesija ir beigusies. Pieslēdzieties vēlreiz, lai turpinātu.",
                     "For your security your session has ended. Log in again to continue."),
    # errors
    "bad_request_title": ("Nepareizs pieprasījums", "Bad request"),
    "bad_request_text": ("Šo pieprasījumu nevar izpildīt.", "This request cannot be carried out."),
    "csrf_title": ("Veidlapa ir novecojusi", "The form is out of date"),
    "csrf_text": ("Veidlapu nevarēja pieņemt. Atveriet lapu vēlreiz un mēģiniet vēlreiz.",
                  "The form could not be accepted. Open the page again and retry."),
    "not_found_title": ("Nav atrasts", "Not found"),
    "not_found_text": ("Šādas lapas nav, vai jums nav piekļuves tai.",
                       "There is no such page, or you have no access to it."),
    "too_large_title": ("Pieprasījums ir par lielu", "The request is too large"),
    "too_large_text": ("Nosūtītie dati ir par lielu.", "What was sent is too large."),
    "too_many_title": ("Pārāk daudz mēģinājumu", "Too many attempts"),
    "too_many_text": ("Lūdzu, uzgaidiet minūti un mēģiniet vēlreiz.", "Please wait a minute and try again."),
    "unavailable_title": ("Pakalpojums īslaicīgi nav pieejams", "The service is unavailable for a moment"),
    "unavailable_text": ("Lūdzu, mēģiniet vēlreiz pēc brīža. Nekas netika mainīts.",
                         "Please try again in a moment. Nothing was changed."),
    "crash_title": ("Radās kļūda", "Something went wrong"),
    "crash_text": ("Lūdzu, mēģiniet vēlreiz. Ja kļūda atkārtojas, sazinieties ar mums.",
                   "Please try again. If it happens again, contact us."),
    "forbidden_text": ("Jums nav tiesību to darīt šajā līgumā.", "You have no right to do this on this contract."),
    # contracts
    "choose_contract": ("Izvēlieties līgumu", "Choose a contract"),
    "search": ("Meklēt", "Search"),
    "search_label": ("Līguma numurs, adrese vai turētājs", "Contract number, address or holder"),
    "no_contracts": ("Nav neviena līguma.", "No contracts."),
    "previous_page": ("Iepriekšējā", "Previous"),
    "next_page": ("Nākamā", "Next"),
    "page_of": ("Lapa {page} no {pages}", "Page {page} of {pages}"),
    "number": ("Numurs", "Number"),
    "address": ("Adrese", "Address"),
    "holder": ("Līguma turētājs", "Holder"),
    "role": ("Loma", "Role"),
    "role_owner": ("Līguma turētājs", "Holder"),
    "role_delegate": ("Pilnvarotā persona", "Authorised person"),
    "role_subuser": ("Papildu lietotājs", "Additional user"),
    "role_operator": ("Operators", "Operator"),
    # overview
    "amount_due": ("Apmaksājamā summa", "Amount to pay"),
    "overdue": ("Nokavēts", "Overdue"),
    "credit": ("Pārmaksa", "Credit"),
    "next_due": ("Nākamais apmaksas termiņš", "Next due date"),
    "last_reading": ("Pēdējais rādījums", "Last reading"),
    "none": ("nav", "none"),
    "quick_actions": ("Ātrās darbības", "Quick actions"),
    "pay_now": ("Maksāt", "Pay"),
    "submit_reading": ("Nodot rādījumu", "Submit a reading"),
    "see_bills": ("Skatīt rēķinus", "See bills"),
    "see_consumption": ("Skatīt patēriņu", "See consumption"),
    "manage_users": ("Pārvaldīt lietotājus", "Manage users"),
    "all_contracts": ("Visi līgumi", "All contracts"),
    # bills
    "invoice": ("Rēķins", "Invoice"),
    "period": ("Periods", "Period"),
    "issue_date": ("Izrakstīts", "Issued"),
    "due_date": ("Apmaksas termiņš", "Due date"),
    "total": ("Kopā", "Total"),
    "net": ("Bez PVN", "Net"),
    "vat": ("PVN", "VAT"),
    "paid": ("Samaksāts", "Paid"),
    "remaining": ("Atlikums", "Remaining"),
    "status": ("Statuss", "Status"),
    "estimated": ("aprēķināts", "estimated"),
    "no_invoices": ("Rēķinu vēl nav.", "No invoices yet."),
    "lines": ("Rēķina rindas", "Invoice lines"),
    "kind": ("Pozīcija", "Item"),
    "quantity": ("Daudzums", "Quantity"),
    "unit_price": ("Cena", "Unit price"),
    "amount": ("Summa", "Amount"),
    "pdf_lv": ("PDF latviski", "PDF in Latvian"),
    "pdf_en": ("PDF angliski", "PDF in English"),
    "invoice_status_open": ("neapmaksāts", "open"),
    "invoice_status_paid": ("apmaksāts", "paid"),
    "invoice_status_partially_paid": ("daļēji apmaksāts", "partly paid"),
    "invoice_status_overdue": ("nokavēts", "overdue"),
    # pay
    "pay_title": ("Maksājums", "Payment"),
    "pay_due": ("Apmaksājamā summa: {amount}", "The amount to pay: {amount}"),
    "pay_other": ("Cita summa", "Another amount"),
    "pay_other_hint": ("eiro, piemēram 25,00", "euro, e.g. 25.00"),
    "pay_go": ("Turpināt uz maksājumu", "Continue to payment"),
    "pay_bad_amount": ("Ievadiet summu eiro ar ne vairāk kā diviem cipariem aiz komata (0,01–10 000).",
                       "Enter an amount in euro with at most two decimals (0.01–10,000)."),
    "pay_nothing_due": ("Šobrīd nav ko maksāt. Jūs varat iemaksāt citu summu.",
                        "Nothing is owed right now. You can pay another amount."),
    "pay_in_progress": ("Šis maksājums jau tiek apstrādāts. Uzgaidiet brīdi un atveriet maksājuma lapu vēlreiz.",
                        "This payment is already being processed. Wait a moment and open the payment page again."),
    "pay_waiting_title": ("Gaidām apstiprinājumu", "Waiting for confirmation"),
    "pay_waiting_text": ("Maksājums ir apstiprināts, gaidām bankas apstiprinājumu. Lapa atjaunosies pati.",
                         "The payment was confirmed; we are waiting for the bank's confirmation. The page "
                         "updates itself."),
    "pay_received_title": ("Maksājums saņemts", "Payment received"),
    "pay_received_text": ("Paldies! Mēs saņēmām {amount}.", "Thank you! We received {amount}."),
    "pay_cancelled_title": ("Maksājums atcelts", "Payment cancelled"),
    "pay_cancelled_text": ("Maksājums tika atcelts, nauda netika noņemta.",
                           "The payment was cancelled; no money was taken."),
    "refresh": ("Atjaunot", "Refresh"),
    "back_to_overview": ("Atpakaļ uz pārskatu", "Back to the overview"),
    # readings
    "meter": ("Skaitītājs", "Meter"),
    "reading_value": ("Rādījums (m³, veseli skaitļi)", "Reading (m³, whole numbers)"),
    "send": ("Nosūtīt", "Send"),
    "history": ("Vēsture", "History"),
    "read_on": ("Datums", "Date"),
    "value": ("Rādījums", "Reading"),
    "source": ("Avots", "Source"),
    "submitted_by": ("Iesniedza", "Submitted by"),
    "you": ("jūs", "you"),
    "replaced": ("aizstāts", "replaced"),
    "no_readings": ("Rādījumu vēl nav.", "No readings yet."),
    "no_meters": ("Šim līgumam nav skaitītāju.", "This contract has no meters."),
    "reading_accepted": ("Rādījums {value} m³ ir saņemts. Paldies!", "Reading {value} m³ received. Thank you!"),
    "reading_flagged": ("Rādījums ir saņemts; tas ir neparasti augsts, tāpēc mūsu speciālists to pārbaudīs.",
                        "The reading was received; as it is unusually high, our staff will check it."),
    "reading_window": ("Rādījumu periods", "Reading window"),
    "window_open": ("Rādījumus pieņem tagad, līdz {closes} (ieskaitot).",
                    "Readings are accepted now, until {closes} (inclusive)."),
    "window_next": ("Rādījumus tagad nepieņem. Nākamais periods: {opens} – {closes}.",
                    "Readings are not accepted now. The next window: {opens} – {closes}."),
    "outside_window": ("Rādījumus pieņem no katra mēneša 27. datuma līdz nākamā mēneša pirmās darba dienas "
                       "beigām. Nākamais periods: {opens} – {closes}.",
                       "Readings are accepted from the 27th of each month until the end of the next month's "
                       "first working day. The next window: {opens} – {closes}."),
    "lower_than_previous": ("Rādījums ir mazāks par iepriekšējo ({previous}). Ja skaitītājs ir sasniedzis "
                            "maksimālo vērtību un sācis no nulles, apstipriniet to.",
                            "The reading is lower than the previous one ({previous}). If the meter passed its "
                            "maximum and started again from zero, confirm that."),
    "confirm_rollover": ("Jā, skaitītājs sāka no nulles", "Yes, the meter started again from zero"),
    "confirmation_required": ("Rādījums ir daudz lielāks nekā parasti šajā sezonā. Pārbaudiet to; ja tas ir "
                              "pareizs, apstipriniet.",
                              "The reading is far above the usual for this season. Check it; if it is right, "
                              "confirm it."),
    "confirm_unusual": ("Jā, rādījums ir pareizs", "Yes, the reading is right"),
    "meter_removed": ("Šis skaitītājs ir nomainīts; rādījumu nododiet jaunajam skaitītājam.",
                      "This meter was replaced; submit the reading for the new meter."),
    "field_not_a_number": ("Ievadiet skaitli (tikai cipari).", "Enter a number (digits only)."),
    "field_not_whole": ("Ievadiet veselu skaitli, bez komata.", "Enter a whole number, without decimals."),
    "field_negative": ("Rādījums nevar būt negatīvs.", "A reading cannot be negative."),
    "field_too_many_digits": ("Rādījumā ir vairāk ciparu nekā skaitītājā.",
                              "The reading has more digits than the meter."),
    "field_required": ("Ievadiet rādījumu.", "Enter the reading."),
    "field_other": ("Pārbaudiet ievadīto vērtību.", "Check the value entered."),
    "source_customer": ("klients", "customer"),
    "source_operator": ("operators", "operator"),
    "source_actual": ("nolasīts", "actual"),
    "source_estimated": ("aprēķināts", "estimated"),
    # consumption
    "group_month": ("Mēneši", "Months"),
    "group_quarter": ("Ceturkšņi", "Quarters"),
    "group_year": ("Gadi", "Years"),
    "this_period": ("Šis periods", "This period"),
    "last_year": ("Pirms gada", "A year earlier"),
    "quality": ("Kvalitāte", "Quality"),
    "quality_estimated": ("aprēķināts", "estimated"),
    "quality_customer": ("klienta rādījums", "customer reading"),
    "quality_operator": ("operatora rādījums", "operator reading"),
    "quality_actual": ("nolasīts", "actual"),
    "download_csv": ("Lejupielādēt CSV", "Download CSV"),
    "interval": ("Periods", "Interval"),
    "chart_title": ("Patēriņš m³", "Consumption in m³"),
    "no_data": ("nav datu", "no data"),
    # users and contact details
    "name": ("Vārds, uzvārds", "Name"),
    "email": ("E-pasts", "E-mail"),
    "phone": ("Tālrunis", "Phone"),
    "postal_address": ("Pasta adrese", "Postal address"),
    "language": ("Valoda", "Language"),
    "reminders": ("Atgādināt par rādījumu nodošanu pa e-pastu", "Remind me by e-mail to submit readings"),
    "save": ("Saglabāt", "Save"),
    "valid_until": ("Derīgs līdz", "Valid until"),
    "last_login": ("Pēdējā pieslēgšanās", "Last login"),
    "actions": ("Darbības", "Actions"),
    "level": ("Tiesības", "Rights"),
    "level_bills": ("rēķini", "bills"),
    "level_bills_readings": ("rēķini un rādījumi", "bills and readings"),
    "user_status_invited": ("uzaicināts", "invited"),
    "user_status_expired": ("uzaicinājums beidzies", "invitation expired"),
    "user_status_active": ("aktīvs", "active"),
    "user_status_ended": ("beidzies", "ended"),
    "user_status_revoked": ("atsaukts", "revoked"),
    "resend": ("Sūtīt uzaicinājumu vēlreiz", "Send the invitation again"),
    "revoke": ("Atsaukt piekļuvi", "Revoke access"),
    "add_user": ("Pievienot lietotāju", "Add a user"),
    "invite": ("Uzaicināt", "Invite"),
    "optional": ("nav obligāti", "optional"),
    "activity": ("Darbību vēsture", "Activity"),
    "when": ("Kad", "When"),
    "what": ("Kas notika", "What"),
    "who": ("Kas", "Who"),
    "subject": ("Kam", "For whom"),
    "user_invited": ("Uzaicinājums ir nosūtīts.", "The invitation was sent."),
    "user_revoked": ("Piekļuve ir atsaukta.", "Access was revoked."),
    "user_resent": ("Uzaicinājums ir nosūtīts vēlreiz.", "The invitation was sent again."),
    "user_changed": ("Izmaiņas ir saglabātas.", "The change was saved."),
    "change_failed": ("Izmaiņas netika saglabātas: {detail}", "The change was not saved: {detail}"),
    "contact_saved": ("Kontaktinformācija ir saglabāta.", "Your contact details were saved."),
    "contact_email_sent": ("Uz jauno e-pasta adresi nosūtījām saiti; adrese mainīsies, kad to atvērsiet.",
                           "We sent a link to the new e-mail address; it is used once you open the link."),
    "email_pending": ("Gaida apstiprinājumu: {email}", "Waiting for confirmation: {email}"),
    "action_user_invited": ("uzaicināts lietotājs", "user invited"),
    "action_user_changed": ("mainītas lietotāja tiesības", "user's rights changed"),
    "action_invitation_resent": ("uzaicinājums nosūtīts vēlreiz", "invitation sent again"),
    "action_invitation_cancelled": ("uzaicinājums atcelts", "invitation cancelled"),
    "action_invitation_accepted": ("uzaicinājums pieņemts", "invitation accepted"),
    "action_grant_revoked": ("piekļuve atsaukta", "access revoked"),
    "action_grant_added": ("piekļuve piešķirta", "access granted"),
    "action_grant_ended": ("piekļuve beigusies", "access ended"),
    "action_payment_made": ("maksājums", "payment"),
    "action_reading_submitted": ("nodots rādījums", "reading submitted"),
    "add_mandate": ("Pilnvarot personu", "Authorise a person"),
    "mandate_text": ("Pilnvarotā persona var visu, ko jūs, arī pārvaldīt lietotājus. Apstiprināšanai vajadzīga "
                     "stipra pieslēgšanās pēdējo 15 minūšu laikā.",
                     "An authorised person can do everything you can, including managing users. It needs a strong "
                     "login within the last 15 minutes."),
    "personal_code": ("Personas kods", "Personal code"),
    "grant_mandate": ("Pilnvarot", "Authorise"),
    "mandate_granted": ("Pilnvarotajai personai nosūtījām uzaicinājumu.",
                        "We sent the authorised person an invitation."),
    "step_up_title": ("Vajadzīga drošāka pieslēgšanās", "A stronger login is needed"),
    "step_up_text": ("Šai darbībai pieslēdzieties ar Smart-ID, eParakstu vai internetbanku.",
                     "For this, log in with Smart-ID, eParaksts or your internet bank."),
}


def pick(lang: str | None) -> str:
    """Return ``lang`` when the portal speaks it, else the default."""
    return lang if lang in LANGS else DEFAULT


def current() -> str:
    """The request's language."""
    return str(g.get("lang", DEFAULT))


def other() -> str:
    """The language the switch offers."""
    return "en" if current() == "lv" else "lv"


def text(key: str, **values: Any) -> str:
    """Return the words for ``key`` in the request's language, with ``values`` filled in."""
    pair = TEXT.get(key)
    words = key if pair is None else pair[LANGS.index(current())]
    return words.format(**values) if values else words


def text_or(key: str, fallback: str) -> str:
    """The words for ``key``, or ``fallback`` when there are none."""
    return text(key) if key in TEXT else fallback


def money(value: Any) -> str:
    """An amount in euro: ``1 234,56 €`` in Latvian, ``€1,234.56`` in English."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    plain = f"{amount:,.2f}"
    if current() == "lv":
        return plain.replace(",", "\u00a0").replace(".", ",") + "\u00a0€"
    return f"€{plain}"


def date(value: Any) -> str:
    """A date (ISO text or a date): ``31.01.2026`` in Latvian, ``2026-01-31`` in English."""
    if not value:
        return ""
    try:
        day = value if isinstance(value, date_type) else date_type.fromisoformat(str(value)[:10])
    except ValueError:
        return str(value)
    return day.strftime("%d.%m.%Y") if current() == "lv" else day.isoformat()


def datetime_(value: Any) -> str:
    """A moment (ISO text) in Riga time."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(RIGA)
    return moment.strftime("%d.%m.%Y %H:%M") if current() == "lv" else moment.strftime("%Y-%m-%d %H:%M")


def window_days(window: dict[str, Any] | None) -> dict[str, str]:
    """A reading window's first and last day (its ``closes`` is exclusive: the day before it is the last)."""
    if not window:
        return {}
    try:
        opens = datetime.fromisoformat(str(window["opens"])).astimezone(RIGA)
        closes = datetime.fromisoformat(str(window["closes"])).astimezone(RIGA) - timedelta(seconds=1)
    except (KeyError, ValueError):
        return {}
    return {"opens": date(opens.date()), "closes": date(closes.date())}
