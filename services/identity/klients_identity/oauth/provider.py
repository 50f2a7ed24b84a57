"""The authorization server (authlib): the code grant with PKCE S256 required, its codes, ID tokens, and the
token endpoint's hooks. Clients are ``clients``; what a token says about the person, ``claims``; the token
pipeline both grants share, ``pipeline``; the refresh grant, ``refresh``.

Rules (RFC 9700): code flow only; PKCE S256 for every client, public or confidential; exact redirect-URI
match; codes single-use and valid 60 s (a second use revokes what the first one issued); refresh tokens
rotate on every use and a reused one revokes its whole family; no implicit or password grant exists.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, InvalidRequestError, grants
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import UserInfo
from authlib.oidc.core.grants import OpenIDCode
from flask import Flask, current_app, request
from sqlalchemy import bindparam, insert, select, update

from klients_common.digests import secret_digest
from klients_common.grants import Grant as TokenGrant
from klients_common.grants import grants_claim

from ..db import db
from ..models import AuthorizationCode, LoginSession, Person, RefreshToken, as_utc, utcnow
from . import keys
from .claims import Subject, live_grants, user_info
from .clients import Client, query_client
from .pipeline import new_refresh_token, refresh_expiry, sign_access_token, token_grants, token_response
from .revocation import revoke_chain
from .tokens import MAX_GRANTS_IN_TOKEN

CODE_TTL = timedelta(seconds=60)
CODES = AuthorizationCode.__table__
# Built once (they run on every exchange): the code used up if it is this client's, unused and unexpired (its
# family set for the tokens it issues); a used one, for reuse detection; the refresh token stored (Core: no unit of
# work to flush at commit).
USE_CODE = (update(CODES).where(
    CODES.c.code_hash == bindparam("h"), CODES.c.client_id == bindparam("client"), CODES.c.used_at.is_(None),
    CODES.c.expires_at > bindparam("now")).values(used_at=bindparam("now"), family_id=bindparam("family"))
    .returning(CODES.c.sid, CODES.c.redirect_uri, CODES.c.scope, CODES.c.nonce, CODES.c.code_challenge,
               CODES.c.code_challenge_method, CODES.c.acr, CODES.c.amr, CODES.c.auth_time, CODES.c.family_id))
USED_CODE = select(CODES.c.family_id, CODES.c.sid).where(
    CODES.c.code_hash == bindparam("h"), CODES.c.client_id == bindparam("client"), CODES.c.used_at.is_not(None))
STORE_TOKEN = insert(RefreshToken.__table__)
# What the ID token says about the person, read with the login (Core columns: no ORM objects to build).
LOGIN_AND_PERSON = select(
    LoginSession.person_id, LoginSession.ended_at, LoginSession.expires_at, Person.id, Person.given_name,
    Person.family_name, Person.language, Person.email,
).join(Person, Person.id == LoginSession.person_id).where(LoginSession.sid == bindparam("sid"))


# --- authorization codes -----------------------------------------------------------------------------

@dataclass
class Code(AuthorizationCodeMixin):  # type: ignore[misc]
    """A stored code as authlib sees it."""

    row: Any  # the code's columns (``USE_CODE``'s row)

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
        return as_list(self.row.amr)


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
        """Use up the unused, unexpired code of this client and return it; a reused code revokes what it issued.
        The code is marked used (with the refresh family its tokens will start) in the same statement that finds
        it: of two concurrent exchanges of one code, the second waits on the row and then finds it used. The
        token view commits this with the tokens, and rolls it back when the exchange is refused afterwards (a
        wrong verifier or redirect URI): only an exchange that issues tokens uses the code up."""
        connection, now = db().connection(), utcnow()
        code_hash = secret_digest(code)
        row = connection.execute(USE_CODE, {"h": code_hash, "client": client.get_client_id(), "now": now,
                                            "family": str(uuid.uuid4())}).first()
        if row is not None:
            return Code(row)
        reused = connection.execute(USED_CODE, {"h": code_hash, "client": client.get_client_id()}).first()
        if reused is not None:
            # RFC 6749 §4.1.2: a reused code revokes what its first exchange issued, access token included.
            revoke_chain(db(), family_id=reused.family_id, sid=reused.sid, client_id=client.get_client_id(),
                         reason="code_reuse")
            db().commit()
        return None

    def delete_authorization_code(self, authorization_code: Code) -> None:
        """Nothing: the code was marked used when it was found (``query_authorization_code``)."""

    def authenticate_user(self, authorization_code: Code) -> Subject | None:
        """Return whom the code was issued for, if their login still stands."""
        return subject_of_code(authorization_code.row)


def subject_of_code(row: Any) -> Subject | None:
    """Return whom a used-up code (``USE_CODE``'s row) was issued for, if their login still stands (not ended,
    not expired: the same rule as every refresh)."""
    # The login and its person in one statement: the ID token needs the person's name (the code exchange's
    # profile had the person's own lookup, with the flush it set off, as a third of the token view).
    login = db().connection().execute(LOGIN_AND_PERSON, {"sid": row.sid}).first()
    if login is None or login.ended_at is not None or as_utc(login.expires_at) <= utcnow():
        return None
    return Subject(login.person_id, row.acr, as_list(row.amr), as_utc(row.auth_time), row.sid,
                   family_id=row.family_id, session_expires=as_utc(login.expires_at), loaded_person=login)


def as_list(value: Any) -> list[str]:
    """Return a JSON list column's value as a list (SQLite may hand it over as text)."""
    return json.loads(value) if isinstance(value, str) else list(value)


# --- ID tokens ----------------------------------------------------------------------------------------

class OpenIDConnect(OpenIDCode):  # type: ignore[misc]
    """ID tokens signed under the client's ``id_token_signed_response_alg`` with identity's current key of
    that algorithm."""

    def exists_nonce(self, nonce: str, request: Any) -> bool:
        """Return whether the nonce was already used with this client."""
        return db().scalar(select(AuthorizationCode.code_hash).where(
            AuthorizationCode.client_id == request.payload.client_id, AuthorizationCode.nonce == nonce)) is not None

    def resolve_client_private_key(self, client: Client) -> Any:
        """Return the current signing key of the client's algorithm."""
        return keys.private_jwk(keys.current(db(), alg=client.id_token_signed_response_alg))

    def get_client_algorithm(self, client: Client) -> str:
        """Return the client's ``id_token_signed_response_alg``."""
        return client.id_token_signed_response_alg

    def get_encode_header(self, client: Client) -> dict[str, str]:
        """Name the algorithm, the key and the token type (an ID token is never an access token)."""
        alg = client.id_token_signed_response_alg
        return {"alg": alg, "kid": keys.current(db(), alg=alg).kid, "typ": "JWT"}

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


def generate_token(grant_type: str, client: Client, user: Subject | None = None, scope: str | None = None,
                   expires_in: int | None = None, include_refresh_token: bool = True) -> dict[str, Any]:
    """Return the code grant's token response: an RFC 9068 access token and, if the client may refresh, a
    refresh token."""
    if user is None:
        raise ValueError("tokens are issued to persons only")
    grants = token_grants(db(), user.person_id, request.form.getlist("resource"))
    refresh = new_refresh_token() if include_refresh_token and client.check_grant_type("refresh_token") else None
    return token_for(client, user, scope or "", grants, refresh)


def token_for(client: Client, user: Subject, scope: str, grants: tuple[list[TokenGrant], bool],
              refresh: str | None) -> dict[str, Any]:
    """Return the code grant's token response for ``user``: the access token signed, carrying ``grants`` (from
    ``pipeline.chosen_grants``), and the refresh token ``refresh`` if any."""
    scope = client.get_allowed_scope(scope)
    access = sign_access_token(db(), client=client, person_id=user.person_id, sid=user.sid,
                               acr=user.acr, amr=user.amr, auth_time=user.auth_time, scope=scope, grants=grants)
    return token_response(access, scope, refresh)


def save_token(token: dict[str, Any], request: Any) -> None:
    """Store the refresh token (hashed) in the family of its login."""
    store_refresh_token(token, request.user, request.client)


def store_refresh_token(token: dict[str, Any], user: Subject | None, client: Client) -> None:
    """Store the token response's refresh token, if any (hashed), in the family of its login."""
    refresh = token.get("refresh_token")
    if not refresh or user is None:
        return
    now = utcnow()
    db().connection().execute(STORE_TOKEN, {
        "token_hash": secret_digest(refresh), "family_id": user.family_id, "client_id": client.get_client_id(),
        "person_id": user.person_id, "sid": user.sid, "scope": token.get("scope", ""), "acr": user.acr,
        "amr": user.amr, "auth_time": user.auth_time, "issued_at": now,
        "expires_at": refresh_expiry(now, user.session_expires), "revoked": False, "rotated_at": None})


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
