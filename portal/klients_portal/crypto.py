"""Tokens encrypted at rest: the session table holds access, refresh and ID tokens only as AES-256-GCM
ciphertext under a key from configuration (``PORTAL_SESSION_KEY``), bound to their row and column (the
associated data), so a copy of the table (a backup, a replica, a leaked dump) carries no usable token, and a
value moved to another row does not decrypt.

Rotation: ``PORTAL_SESSION_KEY`` is a list (space or comma separated); the first key encrypts, every key
decrypts. A stored value names its key (``<key id>.<nonce+ciphertext>``, the id being the first 8 bytes of
the key's SHA-256 in hex). Put a new key first, keep the old one after it until every session written under
it has ended (``PORTAL_SESSION_HOURS``), then drop it. A value no key opens reads as no token: that session
has to log in again."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class BadKey(ValueError):
    """A configured key is not 32 bytes of URL-safe base64."""


def new_key() -> str:
    """A fresh key, as ``PORTAL_SESSION_KEY`` takes it."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadKey("a PORTAL_SESSION_KEY is not URL-safe base64") from exc
    if len(raw) != 32:
        raise BadKey("a PORTAL_SESSION_KEY must be 32 bytes (klients-portal new-session-key makes one)")
    return raw


class TokenCipher:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        if not keys:
            raise BadKey("no PORTAL_SESSION_KEY")
        self._keys = [(hashlib.sha256(raw).hexdigest()[:16], AESGCM(raw)) for raw in map(_decode, keys)]

    def encrypt(self, value: str | None, *, row: str, column: str) -> str | None:
        """``value`` sealed for ``row``'s ``column`` (None stays None)."""
        if value is None:
            return None
        kid, aead = self._keys[0]
        nonce = os.urandom(12)
        sealed = aead.encrypt(nonce, value.encode(), f"{row}:{column}".encode())
        return f"{kid}.{base64.urlsafe_b64encode(nonce + sealed).decode().rstrip('=')}"

    def decrypt(self, stored: str | None, *, row: str, column: str) -> str | None:
        """The token in ``stored``; None when there is none or no configured key opens it."""
        if not stored:
            return None
        kid, _, body = stored.partition(".")
        for known, aead in self._keys:
            if known != kid:
                continue
            try:
                raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
                return aead.decrypt(raw[:12], raw[12:], f"{row}:{column}".encode()).decode()
            except (InvalidTag, binascii.Error, ValueError):
                return None
        return None
