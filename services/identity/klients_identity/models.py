"""Identity's tables: persons and their logins, grants, OAuth clients, codes, refresh tokens, sessions,
signing keys, the audit log and the outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.ext.mutable import MutableDict
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from klients_common.auth import ALLOWED_ALGORITHMS
from klients_common.db import as_utc  # noqa: F401 - identity's modules import it from here
from klients_common.outbox import outbox_table, processed_events_table
from klients_common.ratelimit import rate_limits_table


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class IdentityBase(DeclarativeBase):
    """Declarative base of identity's tables."""


class SigningKey(IdentityBase):
    """A key that signs tokens under ``alg`` from ``active_from`` (RSA for RS256 and PS256, EC P-256 for ES256),
    published until ``retire_at``."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10), default="RS256")
    private_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    active_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    retire_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Person(IdentityBase):
    """A natural person. ``id`` is the opaque ``sub`` of their tokens; the personal code is set once a
    strong method proved it."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    personal_code: Mapped[str | None] = mapped_column(String(12), unique=True, nullable=True)
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    phone: Mapped[str | None] = mapped_column(String(20), nullable=True)
    address: Mapped[str | None] = mapped_column(String(300), nullable=True)
    language: Mapped[str] = mapped_column(String(2), default="lv")
    reminders: Mapped[bool] = mapped_column(Boolean, default=True)  # reading-window reminders by e-mail
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PasswordLogin(IdentityBase):
    """An e-mail + password login of a person (assurance low)."""

    __tablename__ = "password_logins"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)  # normalised, lower-case
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Grant(IdentityBase):
    """A person's role on a contract (docs/access.md, "Roles and rights")."""

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_person_status", "person_id", "status"),
                      Index("ix_grants_contract_status", "contract", "status"),
                      # one open invitation or live grant per invited address and contract
                      Index("uq_grants_open_invitee", "contract", "invitee_email", unique=True,
                            postgresql_where=text("status IN ('invited', 'active') AND invitee_email IS NOT NULL"),
                            sqlite_where=text("status IN ('invited', 'active') AND invitee_email IS NOT NULL")))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    person_id: Mapped[str | None] = mapped_column(ForeignKey("persons.id"), nullable=True)
    contract: Mapped[str] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(12))  # owner, delegate, subuser
    level: Mapped[str | None] = mapped_column(String(16), nullable=True)  # sub-users: bills, bills_readings
    status: Mapped[str] = mapped_column(String(12))  # invited, active, expired, revoked
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)  # last day (Riga) it is valid
    invitee_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    invitee_email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    expected_personal_code: Mapped[str | None] = mapped_column(String(12), nullable=True)  # strong login must match
    created_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ended_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(300), nullable=True)


class Invitation(IdentityBase):
    """A single-use invitation link for a pending grant (≥128-bit random, stored hashed, with a deadline).
    Resending replaces the link: the old one is cancelled."""

    __tablename__ = "invitations"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    grant_id: Mapped[str] = mapped_column(ForeignKey("grants.id"), index=True)
    email: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Attachment(IdentityBase):
    """An application's scan, by content hash (so the same file is stored once)."""

    __tablename__ = "attachments"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Application(IdentityBase):
    """A paper application recorded by an operator (a delegate's mandate or an additional user), with its
    attachment (stored outside the database, by content hash) and the decision."""

    __tablename__ = "applications"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(12))  # delegate, subuser
    contract: Mapped[str] = mapped_column(String(32), index=True)
    holder_name: Mapped[str | None] = mapped_column(String(200), nullable=True)  # from the register when recorded
    name: Mapped[str] = mapped_column(String(200))
    personal_code: Mapped[str | None] = mapped_column(String(12), nullable=True)
    email: Mapped[str] = mapped_column(String(254))
    level: Mapped[str | None] = mapped_column(String(16), nullable=True)
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    status: Mapped[str] = mapped_column(String(12), index=True)  # recorded, approved, rejected
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    attachment_name: Mapped[str] = mapped_column(String(200))
    attachment_type: Mapped[str] = mapped_column(String(40))
    attachment_size: Mapped[int] = mapped_column(Integer)
    attachment_sha256: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(100))
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    grant_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class OAuthClient(IdentityBase):
    """A registered OAuth client. Public clients have no secret; every client must use PKCE S256."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[str] = mapped_column(String(300), default="openid profile")
    grant_types: Mapped[str] = mapped_column(String(100), default="authorization_code refresh_token")
    # OpenID Connect Dynamic Client Registration metadata beyond the columns above (authlib's name for it):
    # ``access_token_signed_response_alg`` and ``id_token_signed_response_alg``, each one of
    # ``ALLOWED_ALGORITHMS`` (RS256 when absent). Checked whenever a client is saved (``check_client_metadata``).
    client_metadata: Mapped[dict[str, Any]] = mapped_column(MutableDict.as_mutable(JSON), default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


SIGNING_METADATA = ("access_token_signed_response_alg", "id_token_signed_response_alg")


def check_client_metadata(metadata: dict[str, Any]) -> None:
    """Raise ``ValueError`` saying what is wrong when a client's signing algorithms are not ones identity
    signs with (an HMAC, ``none``, a typo)."""
    for name in SIGNING_METADATA:
        alg = metadata.get(name)
        if alg is not None and alg not in ALLOWED_ALGORITHMS:
            raise ValueError(f"{name} {alg!r} is not offered: use one of {', '.join(ALLOWED_ALGORITHMS)}")


@event.listens_for(OAuthClient, "before_insert")
@event.listens_for(OAuthClient, "before_update")
def _check_client(mapper: Any, connection: Any, client: OAuthClient) -> None:
    check_client_metadata(client.client_metadata or {})


class LoginSession(IdentityBase):
    """A browser's login at identity (the ``sid`` of its tokens)."""

    __tablename__ = "login_sessions"

    sid: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[str] = mapped_column(ForeignKey("persons.id"), index=True)
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # retention
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuthorizationCode(IdentityBase):
    """A single-use authorization code (stored hashed), valid for at most a minute."""

    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(36))
    sid: Mapped[str] = mapped_column(String(64))
    redirect_uri: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(300))
    nonce: Mapped[str | None] = mapped_column(String(255), nullable=True)
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(10))
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # retention
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    family_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # refresh family issued from it


class RefreshToken(IdentityBase):
    """A refresh token (stored hashed). Each use rotates it; a reused one revokes its whole family."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36), index=True)
    client_id: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[str] = mapped_column(String(36), index=True)
    sid: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(300))
    acr: Mapped[str] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # retention
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class TokenRevocation(IdentityBase):
    """Access tokens revoked before they expire: one token (``kind`` ``jti``) or every token of a login (``sid``,
    at one client if ``client_id`` is set) issued no later than ``revoked_at``. Announced to every service as
    ``token_revoked``; needed only for the longest access-token lifetime (the retention job deletes older rows)."""

    __tablename__ = "token_revocations"
    __table_args__ = (Index("ix_token_revocations_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(64))
    client_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    reason: Mapped[str] = mapped_column(String(32))


class UsedNonce(IdentityBase):
    """Nonces of provider responses already accepted (bank links), so a replay is refused."""

    __tablename__ = "used_nonces"
    __table_args__ = (UniqueConstraint("provider", "nonce"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEvent(IdentityBase):
    """Who did what, for whom, on which contract, when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(64), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    contract: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


outbox = outbox_table(IdentityBase.metadata)
processed_events = processed_events_table(IdentityBase.metadata)
rate_limits = rate_limits_table(IdentityBase.metadata)  # klients_common.ratelimit's counters


class BrowserSession(IdentityBase):
    """Server-side state of a browser at identity (the cookie holds only the random id): the login it has,
    the authorization request it is completing, CSRF token, and in-flight provider sessions."""

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class BankReturn(IdentityBase):
    """A bank's response parked for a moment: banks return with a cross-site POST, which does not carry our
    SameSite=Lax cookie, so the response is kept under a random key and read back on the redirect that
    follows (which does carry it)."""

    __tablename__ = "bank_returns"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    bank_id: Mapped[str] = mapped_column(String(32))
    fields: Mapped[dict[str, str]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class EmailToken(IdentityBase):
    """A single-use link sent by e-mail (registration or password reset): ≥128-bit random, stored hashed."""

    __tablename__ = "email_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # register, reset
    email: Mapped[str] = mapped_column(String(254), index=True)
    contract: Mapped[str | None] = mapped_column(String(32), nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)  # retention
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
