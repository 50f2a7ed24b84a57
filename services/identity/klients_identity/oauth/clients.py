"""Registered OAuth clients as authlib sees them, looked up through a short in-process cache, and how a
token-endpoint request proves which client it comes from (HTTP Basic or form fields; secrets are argon2id
hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from argon2.exceptions import VerificationError
from authlib.oauth2.rfc6749 import ClientMixin
from flask import request

from klients_common.auth import PERSON_SCOPES

from ..db import db
from ..hashing import hasher
from ..models import OAuthClient
from .keys import DEFAULT_ALG

# A confidential client shows its secret on every token request, and argon2id is built to be slow (tens of
# milliseconds of CPU). A successful verification is remembered in the process, keyed by an HMAC (with a key
# this process draws at start and never stores) of the client, its stored hash and the presented secret: the same
# secret against the same hash is not verified again; a wrong secret is never remembered, so it is verified (and
# refused) every time; a rotated secret has a new hash, so the old secret's entry no longer matches.
_process_key = secrets.token_bytes(32)
_verified: set[bytes] = set()
_verified_lock = threading.Lock()
VERIFIED_MAX = 10_000


def _verified_key(client_id: str, secret_hash: str, secret: str) -> bytes:
    message = "\x00".join((client_id, secret_hash, secret)).encode()
    return hmac.new(_process_key, message, hashlib.sha256).digest()


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
        """Return whether the secret is right (argon2id hash; a success is remembered, ``_verified``)."""
        if not self.row.secret_hash or not client_secret:
            return False
        seen = _verified_key(self.row.client_id, self.row.secret_hash, client_secret)
        if seen in _verified:
            return True
        try:
            ok = hasher.verify(self.row.secret_hash, client_secret)
        except VerificationError:
            return False
        if ok:
            with _verified_lock:
                if len(_verified) >= VERIFIED_MAX:
                    _verified.clear()
                _verified.add(seen)
        return bool(ok)

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

    @property
    def client_metadata(self) -> dict[str, Any]:
        """Return the client's registration metadata (authlib's name; OIDC Dynamic Client Registration's)."""
        return self.row.client_metadata or {}

    @property
    def access_token_signed_response_alg(self) -> str:
        """Return the algorithm the client's access tokens are signed with (RS256 unless registered)."""
        return str(self.client_metadata.get("access_token_signed_response_alg") or DEFAULT_ALG)

    @property
    def id_token_signed_response_alg(self) -> str:
        """Return the algorithm the client's ID tokens are signed with (RS256 unless registered)."""
        return str(self.client_metadata.get("id_token_signed_response_alg") or DEFAULT_ALG)


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
