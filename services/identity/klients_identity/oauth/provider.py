"""The OAuth 2.0 / OpenID Connect machinery (authlib): clients, the code grant with PKCE S256 required,
rotating refresh tokens with reuse detection, RFC 9068 access tokens and ID tokens.

Rules (RFC 9700): code flow only; PKCE S256 for every client, public or confidential; exact redirect-URI
match; codes single-use and valid 60 s (a second use revokes what the first one issued); refresh tokens
rotate on every use and a reused one revokes its whole family; no implicit or password grant exists.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, ClassVar

from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, InvalidRequestError, OAuth2Error, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, current_app, request
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from klients_common.auth import PERSON_SCOPES
from klients_common.digests import secret_digest
from klients_common.grants import Grant as TokenGrant
from klients_common.grants import Role, SubuserLevel, grants_claim, rights_for
from klients_common.riga import end_of_day_epoch, riga_today

from ..db import db
from ..models import AuthorizationCode, Grant, LoginSession, OAuthClient, Person, RefreshToken, as_utc, utcnow
from . import keys
from . import revocation as token_revocation
from .tokens import MAX_GRANTS_IN_TOKEN, issue_access_token

CODE_TTL = timedelta(seconds=60)
REFRESH_TTL = timedelta(hours=8)
hasher = PasswordHasher()


# --- clients ------------------------------------------------------------------------------------------

@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    """A registered client as authlib sees it."""

    row: OAuthClient

    def get_client_id(self) -> str:
        """Return the client id."""
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        """Return None: the redirect_uri parameter is always required."""
        return None

    def get_allowed_scope(self, scope: str) -> str:
        """Return the requested scopes the client may have in a person's token: those registered for the client
        that a person's token may carry at all (never a service scope, whatever the client's row says)."""
        allowed = set(self.row.scopes.split()) & set(PERSON_SCOPES)
        return " ".join(dict.fromkeys(s for s in (scope or "").split() if s in allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """Return whether ``redirect_uri`` is registered, compared exactly."""
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        """Return whether the secret is right (argon2id hash)."""
        if not self.row.secret_hash or not client_secret:
            return False
        try:
            return hasher.verify(self.row.secret_hash, client_secret)
        except VerificationError:
            return False

    @property
    def confidential(self) -> bool:
        """Return whether the client has a secret."""
        return self.row.secret_hash is not None

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """Public clients authenticate with nothing; confidential ones with their secret."""
        if self.confidential:
            return method in ("client_secret_basic", "client_secret_post")
        return method == "none" and endpoint in ("token", "revoke")

    def check_response_type(self, response_type: str) -> bool:
        """Only the code flow."""
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        """Only the grants registered for the client (never implicit or password)."""
        return grant_type in self.row.grant_types.split()


CLIENT_CACHE_SECONDS = 30.0  # a client changed with the CLI is seen by every process within this time
_clients: dict[str, tuple[float, Client | None]] = {}
_clients_lock = threading.Lock()


def query_client(client_id: str) -> Client | None:
    """Return the client, or None (from a short in-process cache: every token request asks)."""
    now = time.monotonic()
    hit = _clients.get(client_id)
    if hit is not None and hit[0] > now:
        return hit[1]
    row = db().get(OAuthClient, client_id) if client_id else None
    if row is not None:
        db().expunge(row)
    client = Client(row) if row is not None else None
    with _clients_lock:
        if len(_clients) > 1000:
            _clients.clear()
        _clients[client_id] = (now + CLIENT_CACHE_SECONDS, client)
    return client


def authenticate_client(*, confidential_only: bool) -> Client | None:
    """Return the client this token-endpoint request comes from (HTTP Basic or form fields; a confidential
    client must show its secret), or None."""
    auth = request.authorization
    client_id = auth.username if auth else request.form.get("client_id")
    secret = auth.password if auth else request.form.get("client_secret")
    client = query_client(client_id or "")
    if client is None:
        return None
    if client.confidential:
        return client if client.check_client_secret(secret or "") else None
    return None if confidential_only else client


# --- who a token is for ------------------------------------------------------------------------------

@dataclass
class Subject:
    """The person (by id; loaded only when an ID token needs their name) and the login a token is for."""

    person_id: str
    acr: str
    amr: list[str]
    auth_time: datetime
    sid: str
    family_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    session_expires: datetime | None = None  # the login's absolute end: no refresh token outlives it

    def get_user_id(self) -> str:
        """Return the ``sub``."""
        return self.person_id

    @property
    def person(self) -> Person:
        """Return the person (one query, when needed)."""
        person = db().get(Person, self.person_id)
        if person is None:
            raise LookupError(self.person_id)
        return person


LIVE_GRANTS = select(Grant.contract, Grant.role, Grant.level, Grant.valid_from, Grant.valid_until).where(
    Grant.person_id == bindparam("person"), Grant.status == "active")  # built once: it runs on every token


def live_grants(session: Session, person_id: str, today: date | None = None) -> list[TokenGrant]:
    """Return the person's active grants within their dates (Riga days), as token grants."""
    today = today or riga_today()
    rows = session.execute(LIVE_GRANTS, {"person": person_id})
    result = []
    for contract, role_name, level_name, valid_from, valid_until in rows:
        if (valid_until is not None and valid_until < today) or (valid_from is not None and valid_from > today):
            continue
        role = Role(role_name)
        level = SubuserLevel(level_name) if level_name else None
        until = end_of_day_epoch(valid_until) if valid_until else None
        result.append(TokenGrant(contract, role, rights_for(role, level), until))
    return result


# --- authorization codes -----------------------------------------------------------------------------

@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    """A stored code as authlib sees it."""

    row: AuthorizationCode

    @property
    def code_challenge(self) -> str:
        """Return the PKCE challenge."""
        return self.row.code_challenge

    @property
    def code_challenge_method(self) -> str:
        """Return the PKCE method."""
        return self.row.code_challenge_method

    def get_redirect_uri(self) -> str:
        """Return the redirect URI the code was issued for."""
        return self.row.redirect_uri

    def get_scope(self) -> str:
        """Return the granted scope."""
        return self.row.scope

    def get_nonce(self) -> str | None:
        """Return the OIDC nonce."""
        return self.row.nonce

    def get_auth_time(self) -> int:
        """Return when the person authenticated."""
        return int(as_utc(self.row.auth_time).timestamp())

    def get_acr(self) -> str:
        """Return the level of assurance."""
        return self.row.acr

    def get_amr(self) -> list[str]:
        """Return the authentication methods."""
        return list(self.row.amr)


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    """authorization_code with single-use, short-lived codes."""

    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code: str, request: Any) -> None:
        """Store the code hashed, with the login it stands for."""
        subject: Subject = request.user
        data = request.payload.data
        db().add(AuthorizationCode(
            code_hash=secret_digest(code), client_id=request.client.get_client_id(), person_id=subject.person_id,
            sid=subject.sid, redirect_uri=request.payload.redirect_uri,
            scope=request.client.get_allowed_scope(request.payload.scope or ""),
            nonce=data.get("nonce"), code_challenge=data["code_challenge"],
            code_challenge_method=data.get("code_challenge_method", "plain"), acr=subject.acr, amr=subject.amr,
            auth_time=subject.auth_time, expires_at=utcnow() + CODE_TTL))
        db().commit()

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        """Return the unused, unexpired code of this client; a reused code revokes what it issued."""
        # Locked: of two concurrent exchanges of one code, the second waits and then sees it used.
        row = db().get(AuthorizationCode, secret_digest(code), with_for_update=True)
        if row is None or row.client_id != client.get_client_id():
            return None
        if row.used_at is not None:
            # RFC 6749 §4.1.2: a reused code revokes what its first exchange issued, access token included.
            revoke_chain(db(), family_id=row.family_id, sid=row.sid, client_id=row.client_id, reason="code_reuse")
            db().commit()
            return None
        if as_utc(row.expires_at) < utcnow():
            return None
        return Code(row)

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Mark the code used (kept, to detect reuse); committed with the tokens by the token view."""
        authorization_code.row.used_at = utcnow()

    def authenticate_user(self, authorization_code: Code) -> Subject | None:
        """Return whom the code was issued for, if their login still stands (not ended, not expired: the same
        rule as every refresh)."""
        row = authorization_code.row
        login = db().get(LoginSession, row.sid)
        if login is None or login.ended_at is not None or as_utc(login.expires_at) <= utcnow():
            return None
        subject = Subject(login.person_id, row.acr, list(row.amr), as_utc(row.auth_time), row.sid,
                          session_expires=as_utc(login.expires_at))
        row.family_id = subject.family_id
        return subject


def revoke_family(session: Session, family_id: str) -> None:
    """Revoke every refresh token of a family (one login at one client)."""
    session.execute(update(RefreshToken).where(RefreshToken.family_id == family_id).values(revoked=True))


def revoke_chain(session: Session, *, family_id: str | None, sid: str, client_id: str, reason: str) -> None:
    """Revoke a login's tokens at one client: its refresh-token family and, at every service, the access tokens
    issued so far (RFC 7009 §2.1; code and refresh-token reuse)."""
    if family_id:
        revoke_family(session, family_id)
    token_revocation.revoke(session, "sid", sid, client_id=client_id, reason=reason)


# --- ID tokens ----------------------------------------------------------------------------------------

class OpenIDConnect(OpenIDCode):  # type: ignore[misc]
    """ID tokens signed with identity's current key."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """Return whether the nonce was already used with this client."""
        return db().scalar(select(AuthorizationCode.code_hash).where(
            AuthorizationCode.client_id == request.payload.client_id, AuthorizationCode.nonce == nonce)) is not None

    def resolve_client_private_key(self, client: Client) -> Any:
        """Return the current signing key."""
        return keys.private_jwk(keys.current(db()))

    def get_client_algorithm(self, client: Client) -> str:
        """RS256."""
        return "RS256"

    def get_encode_header(self, client: Client) -> dict[str, str]:
        """Name the key and the token type (an ID token is never an access token)."""
        return {"alg": "RS256", "kid": keys.current(db()).kid, "typ": "JWT"}

    def get_client_claims(self, client: Client) -> dict[str, Any]:
        """Return iss, aud and exp of the ID token."""
        settings = current_app.config["SETTINGS"]
        return {"iss": settings.issuer, "aud": [client.get_client_id()], "exp": int(time.time()) + 300}

    def generate_user_info(self, user: Subject, scope: str) -> UserInfo:
        """Return the ID token's claims about the person: also ``acr``/``amr``, and with scope ``grants``
        (Keycloak brokering to identity) the person's grants as JSON text in ``klients_grants`` (an
        identity-provider mapper stores a string claim as it is; Keycloak's token mapper parses it back)."""
        info = user_info(user.person, scope, sid=user.sid)
        info.update(acr=user.acr, amr=user.amr)
        if "grants" in scope.split():
            info["klients_grants"] = json.dumps(grants_claim(live_grants(db(), user.person_id)[:MAX_GRANTS_IN_TOKEN]),
                                                separators=(",", ":"), sort_keys=True)
        return info


def user_info(person: Person, scope: str, *, sid: str | None = None) -> UserInfo:
    """Return the OIDC claims about ``person`` that ``scope`` allows (never the personal code)."""
    info = UserInfo(sub=person.id)
    if sid:
        info["sid"] = sid
    if "profile" in scope.split():
        info.update(given_name=person.given_name, family_name=person.family_name,
                    name=f"{person.given_name} {person.family_name}".strip(), locale=person.language)
    if "email" in scope.split() and person.email:
        info.update(email=person.email, email_verified=True)
    return info


# --- tokens -------------------------------------------------------------------------------------------

CONTRACT_RESOURCE = "urn:klients:contract:"


class InvalidTargetError(OAuth2Error):  # type: ignore[misc]
    """RFC 8707: the requested resource is unknown or not the caller's."""

    error = "invalid_target"


def requested_contracts(resources: list[str]) -> set[str] | None:
    """Return the contracts a token request asks to be scoped to (RFC 8707 ``resource``), or None."""
    if not resources:
        return None
    if len(resources) > MAX_GRANTS_IN_TOKEN or not all(
            r.startswith(CONTRACT_RESOURCE) and 0 < len(r) - len(CONTRACT_RESOURCE) <= 32 for r in resources):
        raise InvalidTargetError(f"resource is {CONTRACT_RESOURCE}<contract>, at most {MAX_GRANTS_IN_TOKEN} of them")
    return {r.removeprefix(CONTRACT_RESOURCE) for r in resources}

# The token pipeline: both grants that issue tokens (authorization_code here, refresh_token in refresh.py)
# choose the grants, mint the access token, make the refresh token and bound its life with these functions.

def token_grants(session: Session, person_id: str, resources: list[str]) -> tuple[list[TokenGrant], bool]:
    """Return the grants an access token carries: every live one, or only those of the contracts the request
    names (RFC 8707 ``resource``; then whether that is a subset of what the person holds)."""
    grants = live_grants(session, person_id)
    wanted = requested_contracts(resources)
    if wanted is None:
        return grants, False
    held = {g.contract for g in grants}
    if not wanted <= held:
        raise InvalidTargetError("a requested resource is not a contract you have access to")
    return [g for g in grants if g.contract in wanted], len(wanted) < len(held)


def sign_access_token(session: Session, *, client_id: str, person_id: str, sid: str, acr: str, amr: list[str],
                      auth_time: datetime, scope: str, grants: tuple[list[TokenGrant], bool]) -> str:
    """Return a signed access token for a person's login at a client, carrying ``grants`` (from
    ``token_grants``: the grants and whether they are a chosen subset)."""
    settings = current_app.config["SETTINGS"]
    return issue_access_token(
        session, issuer=settings.issuer, audience=settings.api_audience, subject=person_id, client_id=client_id,
        grants=grants[0], acr=acr, amr=amr, scope=scope, auth_time=int(auth_time.timestamp()), sid=sid,
        ttl=settings.access_token_ttl, partial=grants[1])


def new_refresh_token() -> str:
    """Return a fresh refresh-token value (244 random bits; stored only as its digest)."""
    return str(uuid.uuid4()) + uuid.uuid4().hex


def refresh_expiry(now: datetime, session_expires: datetime | None) -> datetime:
    """Return when a refresh token made ``now`` expires: ``REFRESH_TTL`` on, never after its login ends."""
    until = now + REFRESH_TTL
    return min(until, session_expires) if session_expires is not None else until


def token_response(access: str, scope: str, refresh: str | None = None) -> dict[str, Any]:
    """Return the token endpoint's answer."""
    token: dict[str, Any] = {"token_type": "Bearer", "access_token": access,
                             "expires_in": current_app.config["SETTINGS"].access_token_ttl, "scope": scope}
    if refresh:
        token["refresh_token"] = refresh
    return token


def generate_token(grant_type: str, client: Client, user: Subject | None = None, scope: str | None = None,
                   expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
    """Return the code grant's token response: an RFC 9068 access token and, if the client may refresh, a
    refresh token."""
    if user is None:
        raise ValueError("tokens are issued to persons only")
    scope = client.get_allowed_scope(scope or "")
    grants = token_grants(db(), user.person_id, request.form.getlist("resource"))
    access = sign_access_token(db(), client_id=client.get_client_id(), person_id=user.person_id, sid=user.sid,
                               acr=user.acr, amr=user.amr, auth_time=user.auth_time, scope=scope, grants=grants)
    refresh = new_refresh_token() if include_refresh_token and client.check_grant_type("refresh_token") else None
    return token_response(access, scope, refresh)


def save_token(token: dict[str, Any], request: Any) -> None:
    """Store the refresh token (hashed) in the family of its login."""
    refresh = token.get("refresh_token")
    user: Subject | None = request.user
    if not refresh or user is None:
        return
    now = utcnow()
    db().add(RefreshToken(
        token_hash=secret_digest(refresh), family_id=user.family_id, client_id=request.client.get_client_id(),
        person_id=user.person_id, sid=user.sid, scope=token.get("scope", ""), acr=user.acr, amr=user.amr,
        auth_time=user.auth_time, issued_at=now, expires_at=refresh_expiry(now, user.session_expires)))


class S256Only(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only: ``plain`` and a missing method are refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        """Refuse an authorization request without a challenge at once (authlib only checks at the token)."""
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)


server = AuthorizationServer()


def config_oauth(app: Flask) -> None:
    """Set up the authorization server on ``app``."""
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", generate_token)
    server.register_grant(CodeGrant, [S256Only(required=True), OpenIDConnect(require_nonce=False)])
