"""Server-rendered pages: language choice, texts in Latvian and English, CSRF protection, error pages."""

from __future__ import annotations

import secrets
from typing import Any

from flask import abort, render_template, request, session
from flask.typing import ResponseReturnValue

from klients_common import constant_time

TEXT: dict[str, dict[str, str]] = {
    "lv": {
        "title": "Pieslēgšanās", "choose": "Izvēlieties, kā pieslēgties", "smart_id": "Smart-ID",
        "eparaksts": "eParaksts", "bank": "Internetbanka", "email": "E-pasts un parole",
        "personal_code": "Personas kods", "start": "Turpināt", "or_qr": "vai skenējiet QR kodu lietotnē",
        "vc_hint": "Pārliecinieties, ka Smart-ID lietotnē redzamais kontrolkods sakrīt:",
        "waiting": "Gaidām apstiprinājumu Smart-ID lietotnē…", "try_again": "Mēģināt vēlreiz",
        "other_method": "Izvēlēties citu veidu", "failed": "Pieslēgšanās neizdevās",
        "no_contract": "Jums nav līguma ar piegādātāju",
        "no_contract_text": "Pēc pieslēgšanās mēs neatradām līgumu, kas noslēgts uz jūsu personas koda. Ja "
                            "līgums vēl ir uz iepriekšējā īpašnieka vārda, vispirms tas jāpārslēdz uz jums: "
                            "sazinieties ar klientu apkalpošanu. Ja esat pilnvarotā persona vai papildu "
                            "lietotājs, izmantojiet saņemto uzaicinājuma saiti.",
        "logged_out": "Jūs esat izrakstījies.", "signed_in": "Jūs esat pieslēdzies.",
        "bad_request": "Nepareizs pieprasījums",
        "strong_needed": "Šai darbībai nepieciešama droša pieslēgšanās (Smart-ID, eParaksts vai internetbanka).",
        "language": "English", "choose_bank": "Izvēlieties banku", "email_login": "Pieslēgties ar e-pastu",
        "password": "Parole", "login": "Pieslēgties",
        "expired": "Pieslēgšanās sesija ir beigusies vai nav derīga. Sāciet no jauna.",
        "continue_to_bank": "Turpināt uz banku",
        "bad_credentials": "Nepareizs e-pasts vai parole.", "register": "Reģistrēties ar e-pastu",
        "contract_number": "Līguma numurs", "forgot": "Aizmirsāt paroli?", "send_link": "Sūtīt saiti",
        "sent": "Ja norādītie dati ir pareizi, uz e-pastu nosūtījām saiti. Tā derīga ierobežotu laiku.",
        "register_text": "Saiti nosūtīsim tikai uz e-pastu, kas norādīts līgumā.",
        "new_password": "Jaunā parole", "repeat_password": "Atkārtojiet paroli", "save": "Saglabāt",
        "link_invalid": "Saite nav derīga", "email_confirmed": "E-pasta adrese apstiprināta un nomainīta.",
        "link_invalid_text": "Saite ir izmantota vai tai beidzies derīguma termiņš. Pieprasiet jaunu saiti.",
        "pw_too_short": "Parolei jābūt vismaz 12 rakstzīmēm.", "pw_too_long": "Parole ir pārāk gara.",
        "pw_too_common": "Šī parole ir pārāk vienkārša vai bieži lietota.",
        "pw_contains_email": "Parolē nedrīkst būt e-pasta adrese.", "pw_mismatch": "Paroles nesakrīt.",
        "invitation": "Uzaicinājums", "invite_text": "Jūs esat uzaicināts piekļūt līgumam {contract}.",
        "invite_subuser_bills": "Jūs varēsiet skatīt un apmaksāt rēķinus.",
        "invite_subuser_bills_readings": "Jūs varēsiet skatīt un apmaksāt rēķinus, nodot skaitītāja rādījumus un "
                                         "skatīt patēriņu.",
        "invite_delegate": "Jūs būsiet līguma turētāja pilnvarotā persona ar visām tiesībām, arī lietotāju "
                           "pārvaldību.",
        "invite_until": "Piekļuve derīga līdz {date}.", "invite_deadline": "Uzaicinājums derīgs līdz {deadline}.",
        "invite_password": "Izvēlieties paroli, ar kuru turpmāk pieslēgsieties ar e-pastu {email}.",
        "invite_strong": "Tālāk apstipriniet savu identitāti ar internetbanku, eParakstu vai Smart-ID.",
        "invite_continue": "Turpināt uz identitātes apstiprināšanu",
        "invite_unknown": "Uzaicinājuma saite nav derīga. Pārbaudiet, vai atvērāt visu saiti no e-pasta.",
        "invite_used": "Šis uzaicinājums jau ir izmantots. Pieslēdzieties ar savu e-pastu un paroli vai "
                       "Smart-ID, eParakstu vai internetbanku.",
        "invite_cancelled": "Šis uzaicinājums ir atsaukts vai aizstāts ar jaunāku. Izmantojiet jaunāko saņemto "
                            "saiti vai lūdziet uzaicinātājam to nosūtīt vēlreiz.",
        "invite_expired": "Uzaicinājuma termiņš ir beidzies. Lūdziet uzaicinātājam nosūtīt to vēlreiz.",
        "invite_already": "Jums jau ir piekļuve šim līgumam.",
        "invite_email_taken": "Ar šo e-pastu jau pieslēdzas cita persona. Sazinieties ar klientu apkalpošanu.",
        "invite_wrong_person": "Uzaicinājums ir paredzēts citai personai: jūsu personas kods nesakrīt ar norādīto. "
                               "Ja tā ir kļūda, lūdziet uzaicinātājam to izlabot un nosūtīt uzaicinājumu vēlreiz.",
        "contact_form": "Jūsu kontaktinformācija", "email_label": "E-pasts", "phone": "Tālrunis",
        "address": "Adrese", "bad_phone": "Norādiet tālruņa numuru, piemēram, +371 20000000.",
        "bad_address": "Adresē var būt līdz 300 rakstzīmēm.", "finish": "Pabeigt",
        "too_large": "Pieprasījums ir pārāk liels",
        "too_large_text": "Nosūtītie dati ir pārāk lieli. Atgriezieties un mēģiniet vēlreiz.",
        "cancel": "Atcelt un atgriezties pakalpojumā",
        "no_contract_next": "Kad līgums būs pārslēgts uz jums, pieslēdzieties vēlreiz.",
    },
    "en": {
        "title": "Log in", "choose": "Choose how to log in", "smart_id": "Smart-ID", "eparaksts": "eParaksts",
        "bank": "Internet bank", "email": "E-mail and password", "personal_code": "Personal code",
        "start": "Continue", "or_qr": "or scan the QR code in the app",
        "vc_hint": "Make sure the verification code in the Smart-ID app matches:",
        "waiting": "Waiting for your confirmation in the Smart-ID app…", "try_again": "Try again",
        "other_method": "Choose another way", "failed": "Login failed",
        "no_contract": "You have no contract with the supplier",
        "no_contract_text": "After you logged in we found no contract under your personal code. If the contract "
                            "is still in the previous owner's name, it must first be transferred to you: contact "
                            "customer service. If you are an authorised person or an additional user, use the "
                            "invitation link you received.",
        "logged_out": "You have logged out.", "signed_in": "You are logged in.", "bad_request": "Bad request",
        "strong_needed": "This needs a strong login (Smart-ID, eParaksts or an internet bank).",
        "language": "Latviski", "choose_bank": "Choose your bank", "email_login": "Log in with e-mail",
        "password": "Password", "login": "Log in",
        "expired": "The login attempt has expired or is not valid. Please start again.",
        "continue_to_bank": "Continue to the bank",
        "bad_credentials": "Wrong e-mail or password.", "register": "Register with e-mail",
        "contract_number": "Contract number", "forgot": "Forgot your password?", "send_link": "Send the link",
        "sent": "If the details are right, we have sent a link to the e-mail address. It is valid for a limited time.",
        "register_text": "We send the link only to the e-mail address on the contract.",
        "new_password": "New password", "repeat_password": "Repeat the password", "save": "Save",
        "link_invalid": "The link is not valid", "email_confirmed": "Your e-mail address is confirmed and changed.",
        "link_invalid_text": "The link has been used or has expired. Ask for a new one.",
        "pw_too_short": "The password must be at least 12 characters.", "pw_too_long": "The password is too long.",
        "pw_too_common": "This password is too simple or too common.",
        "pw_contains_email": "The password must not contain your e-mail address.",
        "pw_mismatch": "The passwords do not match.",
        "invitation": "Invitation", "invite_text": "You are invited to access contract {contract}.",
        "invite_subuser_bills": "You will be able to view and pay bills.",
        "invite_subuser_bills_readings": "You will be able to view and pay bills, submit meter readings and see "
                                         "consumption.",
        "invite_delegate": "You will be the holder's authorised person with all rights, including managing users.",
        "invite_until": "Access is valid until {date}.", "invite_deadline": "The invitation is valid until {deadline}.",
        "invite_password": "Choose the password you will log in with, with your e-mail {email}.",
        "invite_strong": "Next, confirm who you are with an internet bank, eParaksts or Smart-ID.",
        "invite_continue": "Continue to confirm your identity",
        "invite_unknown": "The invitation link is not valid. Check that you opened the whole link from the e-mail.",
        "invite_used": "This invitation has already been used. Log in with your e-mail and password, or with "
                       "Smart-ID, eParaksts or an internet bank.",
        "invite_cancelled": "This invitation was cancelled or replaced by a newer one. Use the newest link you "
                            "received, or ask the person who invited you to send it again.",
        "invite_expired": "The invitation has expired. Ask the person who invited you to send it again.",
        "invite_already": "You already have access to this contract.",
        "invite_email_taken": "Another person already logs in with this e-mail. Please contact customer service.",
        "invite_wrong_person": "The invitation is meant for someone else: your personal code does not match the "
                               "one given. If this is a mistake, ask the person who invited you to correct it and "
                               "send the invitation again.",
        "contact_form": "Your contact details", "email_label": "E-mail", "phone": "Phone", "address": "Address",
        "bad_phone": "Give a phone number, e.g. +371 20000000.",
        "bad_address": "The address may have at most 300 characters.", "finish": "Finish",
        "too_large": "The request is too large",
        "too_large_text": "What was sent is too large. Go back and try again.",
        "cancel": "Cancel and return to the service",
        "no_contract_next": "Once the contract has been transferred to you, log in again.",
    },
}


def lang_of(value: str | None) -> str:
    """Return ``en`` if the first preferred language is English, else ``lv``."""
    first = (value or "").split()[0] if value else ""
    return "en" if first.lower().startswith("en") else "lv"


def current_lang() -> str:
    """Return the page language: ``?lang=``, else the session's, else Latvian."""
    lang = request.args.get("lang")
    if lang in ("lv", "en"):
        session["lang"] = lang
    return session.get("lang", "lv")


def csrf_token() -> str:
    """Return the session's CSRF token, creating it."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return str(session["csrf"])


def check_csrf() -> None:
    """Refuse a form POST without the session's CSRF token (400)."""
    sent = request.form.get("csrf", "")
    if not sent or not constant_time.equal(str(session.get("csrf", "")), sent):
        abort(400, "The form has expired. Go back and try again.")


def render(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render a page in the current language."""
    lang = current_lang()
    context.setdefault("can_return", bool(session.get("pending_authorize")))  # a client waits: offer to go back
    return render_template(template, t=TEXT[lang], lang=lang, csrf=csrf_token(), **context), status


def problem_page(status: int, title_key: str, message: str) -> ResponseReturnValue:
    """Render a clear error page."""
    return render("error.html", status, title_key=title_key, message=message)
