"""JSON Schemas (2020-12) of the public API: request bodies and query parameters (the gateway validates
every request against them) and responses (documentation). ``openapi.py`` builds the OpenAPI 3.1
description from these same objects, so what is documented is what is enforced."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

MONEY: Schema = {"type": "string", "pattern": r"^\d{1,9}\.\d{2}$", "description": "euros, two decimals",
                 "examples": ["12.34"]}
DATE: Schema = {"type": "string", "format": "date"}
DATETIME: Schema = {"type": "string", "format": "date-time"}
NULLABLE_DATE: Schema = {"type": ["string", "null"], "format": "date"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
ROLE: Schema = {"type": "string", "enum": ["owner", "delegate", "subuser"]}
LEVEL: Schema = {"type": "string", "enum": ["bills", "bills_readings"]}
RIGHT: Schema = {"type": "string", "enum": ["bills:read", "bills:pay", "meters:read", "readings:submit",
                                            "consumption:read", "users:manage"]}


def obj(properties: dict[str, Schema], required: tuple[str, ...] = (), *, closed: bool = True,
        description: str = "") -> Schema:
    """Return an object schema; ``closed`` refuses unknown fields (request bodies)."""
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return schema


def items(item: Schema) -> Schema:
    """Return ``{items: [item, ...]}``."""
    return obj({"items": {"type": "array", "items": item}}, ("items",), closed=False)


# --- requests -------------------------------------------------------------------------------------------

CONTACT_PATCH = obj({
    "email": {"type": "string", "format": "email", "maxLength": 254,
              "description": "used only after the link sent to it is opened; the old address is told"},
    "phone": {"type": "string", "maxLength": 40, "description": "any format; stored as E.164 (Latvian if no +)"},
    "address": {"type": "string", "minLength": 1, "maxLength": 300},
    "language": {"type": "string", "enum": ["lv", "en"], "description": "of the portal and every message"},
    "reminders": {"type": "boolean", "description": "reading-window reminders by e-mail (security messages "
                                                    "always come)"},
}, description="Only the fields to change.")

PAYMENT_START = obj({"amount": {"type": "string", "pattern": r"^\d{1,9}(\.\d{1,2})?$", "examples": ["12.34"],
                               "description": "euros; defaults to the whole amount due"}})

READING_SUBMIT = obj({
    "value": {"type": ["integer", "string"], "pattern": r"^\s*[0-9]+\s*$", "minimum": 0, "maximum": 99_999_999,
              "x-error-codes": {"maximum": "too_many_digits"},
              "description": "the meter's display in whole m³: a JSON number or a string of digits"},
    "confirm_rollover": {"type": "boolean", "description": "set when the first answer asked to confirm a rollover"},
    "confirm_unusual": {"type": "boolean", "description": "set when the first answer asked to confirm a large value"},
}, ("value",))

NEW_USER = obj({
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "role": {"type": "string", "enum": ["subuser", "delegate"], "default": "subuser",
             "description": "delegate: the holder's online mandate (needs personal_code and valid_until)"},
    "level": {**LEVEL, "description": "additional users only"},
    "personal_code": {"type": "string", "maxLength": 20, "description": "if given, the strong login must match"},
    "valid_from": DATE,
    "valid_until": {**DATE, "description": "the last day (Europe/Riga) access is valid"},
}, ("name", "email"))

CHANGE_USER = obj({"level": LEVEL, "valid_until": NULLABLE_DATE}, description="At least one field.")
CHANGE_USER["minProperties"] = 1

CONSUMPTION_QUERY: dict[str, tuple[Schema, bool]] = {
    "period_from": ({**DATE, "description": "first day of the first interval"}, True),
    "period_to": ({**DATE, "description": "a day in the last interval"}, True),
    "group_by": ({"type": "string", "enum": ["month", "quarter", "year"], "default": "month"}, False),
    "format": ({"type": "string", "enum": ["json", "csv"], "default": "json"}, False),
}
PDF_QUERY: dict[str, tuple[Schema, bool]] = {"lang": ({"type": "string", "enum": ["lv", "en"], "default": "lv"},
                                                      False)}

# --- responses ------------------------------------------------------------------------------------------

PROBLEM = obj({
    "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
    "detail": {"type": "string"},
    "errors": {"type": "array", "items": obj({"field": {"type": "string"}, "code": {"type": "string"},
                                              "message": {"type": "string"}}, closed=False)},
    "missing_right": RIGHT, "acr_values": {"type": "string"},
}, ("title", "status"), closed=False, description="RFC 9457 problem details")

GRANT = obj({"contract": {"type": "string"}, "role": ROLE, "rights": {"type": "array", "items": RIGHT},
             "until": {"type": ["integer", "null"], "description": "epoch seconds the grant ends"}}, closed=False)
ME = obj({"id": {"type": "string"}, "acr": {"type": "string"}, "grants": {"type": "array", "items": GRANT},
          "token_grants_complete": {"type": "boolean", "description": "false: the token carries some of these "
                                                                      "(ask for contract-scoped tokens)"}},
         closed=False)
CONTACT = obj({"given_name": {"type": "string"}, "family_name": {"type": "string"}, "email": NULLABLE_STRING,
               "email_pending": NULLABLE_STRING, "phone": NULLABLE_STRING, "address": NULLABLE_STRING,
               "language": {"type": "string"}, "reminders": {"type": "boolean"}}, closed=False)
CONTRACT = obj({"number": {"type": "string"}, "holder_name": {"type": "string"},
                "supply_address": {"type": "string"}, "status": {"type": "string"}, "role": ROLE}, closed=False)
BALANCE = obj({
    "contract": {"type": "string"}, "currency": {"type": "string", "const": "EUR"}, "amount_due": MONEY,
    "overdue": MONEY, "credit": MONEY, "as_of": DATETIME,
    "open_invoices": {"type": "array", "items": obj({
        "number": {"type": "string"}, "period": {"type": "string"}, "due_date": DATE, "total": MONEY,
        "remaining": MONEY, "overdue": {"type": "boolean"}, "status": {"type": "string"}}, closed=False)},
}, ("amount_due", "overdue", "credit", "currency", "open_invoices", "as_of"), closed=False)
INVOICE = obj({"number": {"type": "string"}, "period": {"type": "string"}, "issue_date": DATE, "due_date": DATE,
               "total": MONEY, "paid": MONEY, "remaining": MONEY, "status": {"type": "string"},
               "estimated": {"type": "boolean"}}, closed=False)
PAYMENT = obj({"id": {"type": "string"}, "amount": MONEY, "currency": {"type": "string"},
               "status": {"type": "string", "enum": ["pending", "received", "cancelled"]},
               "redirect_url": {"type": "string"}}, closed=False)
METER = obj({"serial_number": {"type": "string"}, "type": {"type": "string"}, "digits": {"type": "integer"},
             "unit": {"type": "string"}, "installed_on": DATE, "removed_on": NULLABLE_DATE}, closed=False)
READING = obj({"id": {"type": "integer"}, "value": {"type": "integer"}, "read_on": DATE,
               "source": {"type": "string"}, "current": {"type": "boolean"}}, closed=False)
CONSUMPTION = obj({"period_from": DATE, "period_to": DATE, "group_by": {"type": "string"},
                   "items": {"type": "array", "items": obj({
                       "interval_start": DATE, "interval_end": DATE,
                       "consumption_m3": {"type": ["string", "number", "null"]},
                       "consumption_kwh": {"type": ["string", "number", "null"]},
                       "quality": {"type": ["string", "null"]}}, closed=False)}}, closed=False)
USER = obj({
    "id": {"type": "string"}, "contract": {"type": "string"}, "role": ROLE, "level": {"type": ["string", "null"]},
    "name": {"type": "string"}, "email": NULLABLE_STRING,
    "status": {"type": "string", "enum": ["invited", "expired", "active", "ended", "revoked"]},
    "valid_from": NULLABLE_DATE, "valid_until": NULLABLE_DATE, "invited_at": NULLABLE_STRING,
    "invitation_expires_at": NULLABLE_STRING, "accepted_at": NULLABLE_STRING, "ended_at": NULLABLE_STRING,
    "last_login_at": NULLABLE_STRING}, closed=False)
ACTIVITY = obj({"users": {"type": "array", "items": USER}, "events": {"type": "array", "items": obj({
    "at": DATETIME, "action": {"type": "string"}, "actor": {"type": "string"},
    "actor_role": {"type": ["string", "null"]}, "subject": {"type": "string"}, "detail": {"type": "object"}},
    closed=False)}}, closed=False)
UNSUBSCRIBED = obj({"email": {"type": "string"}, "reminders": {"const": "off"}}, closed=False)
READING_WINDOW = obj({
    "open": {"type": "boolean", "description": "whether readings are accepted now"},
    "period": {"type": "string", "description": "the month the window belongs to (YYYY-MM)"},
    "opens": DATETIME, "closes": {**DATETIME, "description": "exclusive: the window ends just before it"}},
    ("open", "period", "opens", "closes"), closed=False,
    description="The window open now (open: true, until closes), else the next one (Europe/Riga, Latvian "
                "holidays counted).")
OVERVIEW = obj({
    "contract": CONTRACT,
    "rights": {"type": "array", "items": RIGHT, "description": "the caller's rights on this contract"},
    "balance": {**BALANCE, "properties": {**BALANCE["properties"], "next_due_date": NULLABLE_DATE}},
    "meters": {"type": "array", "items": {**METER, "properties": {**METER["properties"], "last_reading": {
        "anyOf": [READING, {"type": "null"}]}}}, "description": "only with meters:read"},
    "reading_window": {**READING_WINDOW,
                       "description": "only with meters:read; " + READING_WINDOW["description"]},
}, ("contract", "rights", "balance"), closed=False)
