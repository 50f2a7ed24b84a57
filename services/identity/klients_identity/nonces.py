"""Single-use values (a bank response's nonce, a Keycloak logout token's ``jti``) kept in identity's own
database, so every instance refuses a second use: the ``used_nonces`` table, whose unique constraint decides;
the retention job deletes a row once its value could no longer pass as fresh."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from .db import db
from .models import UsedNonce


class DatabaseNonceStore:
    """Nonces of accepted provider responses, in identity's database (a unique constraint decides)."""

    def use(self, bank_id: str, nonce: str, expires_at: float) -> bool:
        """Return True the first time ``nonce`` is used for ``bank_id``."""
        try:
            with db().begin_nested():
                db().add(UsedNonce(provider=bank_id, nonce=nonce, expires_at=datetime.fromtimestamp(expires_at, UTC)))
        except IntegrityError:
            return False
        return True
