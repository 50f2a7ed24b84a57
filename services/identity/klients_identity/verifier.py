"""Identity's own clients: a verifier for its access tokens (keys read from its database, no HTTP to
itself) and the configured Smart-ID connector."""

from __future__ import annotations

from typing import Any

from joserfc.jwk import KeySet

from klients_common.auth import InvalidToken, TokenVerifier, TrustedIssuer

from .settings import Settings


class DatabaseKeys:
    """The published keys, read from identity's database (stands in for a JWKS cache)."""

    def key_set(self, kid: str) -> KeySet:
        """Return the published keys if ``kid`` is among them."""
        from . import db, keys

        published = keys.key_set(db())
        if kid not in {k.kid for k in published.keys}:
            raise InvalidToken("unknown signing key")
        return published


def local_verifier(settings: Settings) -> TokenVerifier:
    """Return a verifier of identity's own access tokens."""
    return TokenVerifier([TrustedIssuer(settings.issuer, f"{settings.issuer}/jwks.json", settings.api_audience)],
                         key_sources={settings.issuer: DatabaseKeys()})


def smartid_client(settings: Settings) -> Any:
    """Return the Smart-ID connector configured from settings (trust anchors read from their files)."""
    from .connectors.smartid import SmartIdClient, SmartIdConfig

    anchors = tuple(p.read_bytes() for p in settings.smartid_trust_anchors if p.exists())
    return SmartIdClient(SmartIdConfig(
        base_url=settings.smartid_url, relying_party_uuid=settings.smartid_rp_uuid,
        relying_party_name=settings.smartid_rp_name, trust_anchors_pem=anchors,
        certificate_level=settings.smartid_cert_level, scheme_name=settings.smartid_scheme,
        poll_timeout_ms=1000))  # each page refresh waits at most a second
