"""The event catalogue: every event on the bus, the one component that may publish it, who consumes it, and
the JSON Schema its payload must match.

This table is the single source of truth for three checks and one document:

- ``outbox.enqueue`` refuses a payload that does not match its event's schema, in the producer's own
  transaction (a producer cannot emit a malformed event);
- ``klients_common.bus.handler`` applies an event only when the broker-validated ``user_id`` of the message
  is the broker identity of the event's producer and the payload matches the schema; anything else is
  dead-lettered unapplied;
- ``klients_common.bus`` grants each component's broker identity exactly the routing keys listed here;
- ``docs/events.md`` is generated from it (``klients-bus catalogue``) and a test keeps the two equal.

Every payload carries ``event_id`` (a UUID, added by ``outbox.enqueue``), the key consumers deduplicate on.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema_rs

STRING = {"type": "string", "minLength": 1, "maxLength": 500}
OPTIONAL_STRING = {"type": ["string", "null"], "maxLength": 500}
EMAIL = {"type": "string", "minLength": 3, "maxLength": 320, "pattern": "^[^@\\s]+@[^@\\s]+$"}
OPTIONAL_EMAIL = {"anyOf": [EMAIL, {"type": "null"}]}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}
OPTIONAL_DATE = {"anyOf": [DATE, {"type": "null"}]}
LANG = {"type": ["string", "null"], "enum": ["lv", "en", None]}
MONEY = {"type": "string", "pattern": "^-?[0-9]{1,12}(\\.[0-9]{1,2})?$"}
BOOLEAN = {"type": "boolean"}
CONTRACT = {"type": "string", "minLength": 1, "maxLength": 32}
WHOLE = {"type": "integer", "minimum": 0}
URL = {"type": "string", "pattern": "^https?://", "maxLength": 2000}
ROLE = {"type": "string", "enum": ["owner", "delegate", "subuser"]}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None, *, open_: bool = False) -> dict[str, Any]:
    """Return an object schema: ``required`` fields must be present; with ``open_`` other fields may follow."""
    properties = {"event_id": {"type": "string", "format": "uuid"}, **required, **(optional or {})}
    return {"type": "object", "properties": properties, "required": ["event_id", *required],
            "additionalProperties": open_}


# Identity's audit events: who did what to whom, for the audit log and any listener. Extra details may follow.
AUDIT = {"actor": OPTIONAL_STRING, "subject": OPTIONAL_STRING, "contract": {"type": ["string", "null"]}}


@dataclass(frozen=True)
class Subscriber:
    """A nameko service method that handles an event (``broadcast``: every instance hears it, on a queue of
    its own that goes with it; otherwise the service's instances share one durable queue)."""

    service: str
    method: str
    broadcast: bool = False


@dataclass(frozen=True)
class Event:
    """One event type on the bus."""

    name: str
    producer: str
    schema: dict[str, Any]
    effect: str
    consumers: tuple[Subscriber, ...] = ()


def to(*where: str, broadcast: bool = False) -> tuple[Subscriber, ...]:
    """Return subscribers from ``"service.method"`` names."""
    return tuple(Subscriber(name.partition(".")[0], name.partition(".")[2], broadcast) for name in where)


KEYCLOAK_SYNC = "identity_keycloak_sync"


def _audit(event: str, effect: str, consumers: tuple[Subscriber, ...] = (), /,
           optional: dict[str, Any] | None = None, **required: Any) -> Event:
    return Event(event, "identity", obj({**AUDIT, **required}, optional, open_=True), effect, consumers)


LINK_MAIL = obj({"to": EMAIL, "link": URL, "expires_at": DATETIME}, {"lang": LANG})
READING = obj({
    "contract": CONTRACT, "meter": STRING, "reading_id": {"type": "integer"}, "value": WHOLE, "read_on": DATE,
    "period": {"type": ["string", "null"], "pattern": "^[0-9]{4}-[0-9]{2}$"}, "source": STRING,
    "consumption_m3": {"type": "integer"}, "consumption_kwh": {"type": "string", "pattern": "^-?[0-9]+\\.[0-9]{3}$"},
    "rollover": BOOLEAN, "flagged": BOOLEAN, "submitted_by": OPTIONAL_STRING, "submitted_role": OPTIONAL_STRING,
    "submitted_at": DATETIME, "replaces": {"type": ["integer", "null"]},
})

CATALOGUE: dict[str, Event] = {e.name: e for e in (
    # --- identity: links and notices (to the person), for notifications -------------------------------------
    Event("email_verification_requested", "identity", LINK_MAIL,
          "notifications mails the registration link to the address", to("notifications.on_email_verification")),
    Event("password_reset_requested", "identity", LINK_MAIL,
          "notifications mails the password-reset link", to("notifications.on_password_reset")),
    Event("contact_email_verification_requested", "identity", LINK_MAIL,
          "notifications mails the link that confirms a new contact address (to the new address)",
          to("notifications.on_contact_email_verification")),
    Event("contact_email_changed", "identity",
          obj({"to": EMAIL, "new_email": EMAIL}, {"lang": LANG, "phone": OPTIONAL_STRING}),
          "notifications tells the old address (and the phone, by SMS) that the e-mail changed",
          to("notifications.on_contact_email_changed")),
    Event("contact_preferences_changed", "identity",
          obj({"email": EMAIL, "language": LANG, "reminders": BOOLEAN, "changed_at": DATETIME}),
          "notifications remembers the address's language and reminder choice",
          to("notifications.on_contact_preferences_changed")),
    Event("invitation_created", "identity",
          obj({"to": EMAIL, "contract": CONTRACT, "role": ROLE, "link": URL, "expires_at": DATETIME},
              {"lang": LANG, "name": OPTIONAL_STRING, "level": OPTIONAL_STRING, "invited_by": OPTIONAL_STRING,
               "valid_until": OPTIONAL_DATE}),
          "notifications mails the invitation link to the invited address", to("notifications.on_invitation_created")),
    Event("invitation_accepted_notice", "identity",
          obj({"to": EMAIL, "invitee": STRING, "contract": CONTRACT, "role": ROLE},
              {"lang": LANG, "name": OPTIONAL_STRING, "level": OPTIONAL_STRING, "grant": OPTIONAL_STRING}),
          "notifications tells the inviter (or the holder) that the invitee took up the access",
          to("notifications.on_invitation_accepted")),
    # --- identity: token revocation -------------------------------------------------------------------------
    Event("token_revoked", "identity",
          obj({"kind": {"type": "string", "enum": ["jti", "sid"]}, "value": STRING, "revoked_at": DATETIME,
               "reason": {"type": "string", "enum": ["revoke", "logout", "password_change", "accounts_linked",
                                                      "code_reuse", "refresh_reuse"]}},
              {"client_id": OPTIONAL_STRING}),
          "every service instance refuses, at once, the access tokens issued no later than `revoked_at` with "
          "this `jti`, or of this login (`sid`; at `client_id` only, if given)",
          to("billing.on_token_revoked", "metering.on_token_revoked", "identity.on_token_revoked", broadcast=True)),
    # --- identity: audit events ---------------------------------------------------------------------------
    _audit("grant_added", "a person gained access to a contract; the Keycloak sync copies their grants",
           to(f"{KEYCLOAK_SYNC}.on_grant_added"), subject=STRING, contract=CONTRACT, role=ROLE),
    _audit("grant_revoked", "every service refuses the person's older tokens for the contract at once "
           "(broadcast to every instance); the Keycloak sync drops the grant; notifications tells the person "
           "when `notify` is true", to("billing.on_grant_revoked", "metering.on_grant_revoked", broadcast=True)
           + to(f"{KEYCLOAK_SYNC}.on_grant_revoked", "notifications.on_grant_revoked"),
           optional={"to": OPTIONAL_EMAIL, "lang": LANG, "name": OPTIONAL_STRING, "reason": OPTIONAL_STRING},
           subject=STRING, contract=CONTRACT, revoked_at=DATETIME, notify=BOOLEAN, role=ROLE),
    _audit("invitation_accepted", "an invitee took up access; the Keycloak sync copies their grants",
           to(f"{KEYCLOAK_SYNC}.on_invitation_accepted"), subject=STRING, contract=CONTRACT, role=ROLE),
    _audit("user_changed", "a sub-user's level or end date changed (an invitee not yet in: no subject); the "
           "Keycloak sync copies the grants", to(f"{KEYCLOAK_SYNC}.on_user_changed"), contract=CONTRACT),
    _audit("person_registered", "a person's first login or registration (audit)"),
    _audit("accounts_linked", "an e-mail account was joined to its holder's strong login (audit)"),
    _audit("login", "a person logged in (audit)"),
    _audit("user_invited", "an additional user or authorised person was invited (audit)"),
    _audit("invitation_resent", "an invitation link was replaced (audit)"),
    _audit("invitation_cancelled", "an open invitation was cancelled (audit)"),
    _audit("invitation_wrong_person", "an invitation link was opened by someone else's strong login (audit)"),
    _audit("contact_updated", "a person changed their contact details (audit)"),
    _audit("password_reset", "a password was set from a reset link (audit)"),
    _audit("operator_signed_in", "an operator signed in to the operator pages (audit)"),
    _audit("application_recorded", "an operator recorded a paper application (audit)"),
    _audit("application_approved", "an operator approved a paper application (audit)"),
    _audit("application_rejected", "an operator rejected a paper application (audit)"),
    # --- billing ---------------------------------------------------------------------------------------
    Event("contract_registered", "billing",
          obj({"contract": CONTRACT, "email": OPTIONAL_EMAIL, "holder_name": {"type": "string"},
               "status": STRING}),
          "notifications remembers where to write about the contract", to("notifications.on_contract_registered")),
    Event("contract_transferred", "billing",
          obj({"contract": CONTRACT, "holder_personal_code": {"type": "string", "pattern": "^[0-9]{6}-?[0-9]{5}$"},
               "on": DATE}),
          "identity ends the previous holder's access and all they granted; the new holder becomes owner",
          to("identity.on_contract_transferred")),
    Event("invoice_issued", "billing",
          obj({"contract": CONTRACT, "invoice": STRING, "period": STRING, "total": MONEY, "due_date": DATE,
               "estimated": BOOLEAN, "email": OPTIONAL_EMAIL}, {"lang": LANG}),
          "notifications mails the invoice notice to the contract's address", to("notifications.on_invoice_issued")),
    Event("payment_received", "billing",
          obj({"payment": STRING, "contract": CONTRACT, "amount": MONEY, "received_at": DATETIME,
               "email": OPTIONAL_EMAIL}, {"person": OPTIONAL_STRING, "role": OPTIONAL_STRING, "lang": LANG}),
          "notifications confirms the payment; identity puts it on the contract's activity list",
          to("notifications.on_payment_received", "identity.on_payment_received")),
    # --- metering --------------------------------------------------------------------------------------
    Event("reading_accepted", "metering", READING,
          "billing keeps the consumption for the billing run; notifications confirms it; identity lists it "
          "as activity", to("billing.on_reading_accepted", "notifications.on_reading_accepted",
                            "identity.on_reading_accepted")),
    Event("reading_flagged", "metering", READING, "an accepted reading far above the usual (for operators)"),
    Event("reading_rejected", "metering",
          obj({"contract": CONTRACT, "meter": STRING, "reason": STRING},
              {"value": {"type": ["integer", "null"]}, "submitted_by": OPTIONAL_STRING,
               "submitted_role": OPTIONAL_STRING}),
          "notifications says why the reading was not accepted", to("notifications.on_reading_rejected")),
    Event("reading_window_opened", "metering",
          obj({"contract": CONTRACT, "period": STRING, "opens": DATETIME, "closes": DATETIME}),
          "notifications reminds the contract's address to submit a reading",
          to("notifications.on_reading_window_opened")),
)}

class EventRejected(Exception):
    """An event that must not be applied: unknown, from the wrong producer, or not matching its schema."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@cache
def _validator(name: str) -> Any:
    return jsonschema_rs.validator_for(CATALOGUE[name].schema, validate_formats=True)


def events_of(producer: str) -> list[str]:
    """Return the event types ``producer`` owns."""
    return sorted(name for name, event in CATALOGUE.items() if event.producer == producer)


def check_payload(event_type: str, payload: Any) -> None:
    """Raise ``EventRejected`` unless ``payload`` matches the schema of ``event_type``."""
    if event_type not in CATALOGUE:
        raise EventRejected("unknown_event", f"{event_type!r} is not in the event catalogue")
    validator = _validator(event_type)
    if not validator.is_valid(payload):
        error = next(iter(validator.iter_errors(payload)))
        where = "/".join(str(part) for part in error.instance_path) or "(payload)"
        raise EventRejected("invalid_payload", f"{event_type} {where}: {error.message}"[:300])


def check_producer(event_type: str, source: str, user_id: str | None, user_prefix: str) -> None:
    """Raise ``EventRejected`` unless the message came from ``source``'s exchange, ``source`` owns
    ``event_type``, and the broker-validated ``user_id`` is that component's broker identity."""
    event = CATALOGUE.get(event_type)
    if event is None:
        raise EventRejected("unknown_event", f"{event_type!r} is not in the event catalogue")
    if event.producer != source:
        raise EventRejected("wrong_producer", f"{event_type} belongs to {event.producer}, not {source}")
    if user_id != user_prefix + event.producer:
        raise EventRejected("forged", f"{event_type} published as {user_id!r}, only {user_prefix}{event.producer} may")


def catalogue_markdown() -> str:
    """Return ``docs/events.md``: the catalogue as a document."""
    import json

    lines = ["# Events", "",
             "Generated from `libs/klients_common/klients_common/events.py` by `klients-bus catalogue > "
             "docs/events.md`; a test keeps them equal. Each event is published by one component only, on its "
             "exchange `<producer>.events` with the event type as routing key and the producer's broker "
             "identity as the message's `user_id` (validated by RabbitMQ). A consumer applies an event only "
             "when that `user_id` is the producer's and the payload matches the schema below; anything else "
             "is dead-lettered (see `docs/bus.md`). Every payload has `event_id` (a UUID): consumers apply an "
             "event once per id.", ""]
    lines += ["| event | producer | consumers | effect |", "|---|---|---|---|"]
    for name in sorted(CATALOGUE):
        event = CATALOGUE[name]
        consumers = ", ".join(f"`{c.service}.{c.method}`" + (" (every instance)" if c.broadcast else "")
                              for c in event.consumers)
        lines.append(f"| `{name}` | {event.producer} | {consumers or '(audit only)'} | {event.effect} |")
    lines += ["", "## Payload schemas", ""]
    for name in sorted(CATALOGUE):
        lines += [f"### `{name}`", "", "```json", json.dumps(CATALOGUE[name].schema, indent=1, sort_keys=True),
                  "```", ""]
    return "\n".join(lines)
