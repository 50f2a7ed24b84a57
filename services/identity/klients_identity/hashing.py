"""The one argon2id hasher of identity: e-mail logins' passwords and confidential clients' secrets are stored
as its hashes (argon2-cffi's RFC 9106 low-memory profile). Short-lived secrets (codes, refresh tokens, links)
are stored as ``klients_common.digests.secret_digest`` instead: they carry enough entropy for a fast digest."""

from __future__ import annotations

from argon2 import PasswordHasher

hasher = PasswordHasher()
