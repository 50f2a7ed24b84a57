"""The stored form of a secret: a code, token, link or cookie id is kept only as its SHA-256 digest, so the
database never holds a value that works when presented. High-entropy values only (random tokens): a
password is hashed with argon2id instead."""

from __future__ import annotations

import base64
import hashlib


def secret_digest(value: str) -> str:
    """Return the SHA-256 hex digest under which ``value`` is stored and looked up."""
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    """Return the PKCE ``S256`` code challenge of ``verifier`` (RFC 7636 §4.2: base64url of its SHA-256, no
    padding), as a client sends it with an authorization request."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
