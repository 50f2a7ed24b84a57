"""A verifier for identity's own access tokens (keys read from its database, no HTTP to itself)."""

from __future__ import annotations

from joserfc.jwk import KeySet

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer

from ..db import db
from ..settings import Settings
from . import keys


class DatabaseKeys:
    """The published keys, read from identity's database (stands in for a JWKS cache)."""

    def key_set(self, kid: str) -> KeySet:
        """Return the published keys if ``kid`` is among them."""
        published = keys.key_set(db())
        if kid not in {k.kid for k in published.keys}:
            raise InvalidToken("unknown signing key")
        return published


def local_verifier(settings: Settings) -> TokenVerifier:
    """Return a verifier of identity's own access tokens."""
    return TokenVerifier([TrustedIssuer(settings.issuer, f"{settings.issuer}/jwks.json", settings.api_audience)],
                         key_sources={settings.issuer: DatabaseKeys()})
