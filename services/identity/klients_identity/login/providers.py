"""The configured strong-authentication providers: the connectors built from settings (bank responses made
single-use across all identity instances by ``nonces.DatabaseNonceStore``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import current_app

from ..connectors.banklink import BankConfig, BankLink
from ..connectors.eparaksts import EparakstsClient, EparakstsConfig
from ..connectors.smartid import SmartIdClient, SmartIdConfig
from ..nonces import DatabaseNonceStore
from ..settings import Settings


def eparaksts() -> EparakstsClient:
    """Return the eParaksts connector."""
    settings = current_app.config["SETTINGS"]
    if "klients_eparaksts" not in current_app.extensions:
        current_app.extensions["klients_eparaksts"] = EparakstsClient(EparakstsConfig(
            base_url=settings.eparaksts_url, client_id=settings.eparaksts_client_id,
            client_secret=settings.eparaksts_client_secret,
            redirect_uri=f"{settings.issuer}/login/eparaksts/callback"))
    client: EparakstsClient = current_app.extensions["klients_eparaksts"]
    return client


@cache
def _read(path: str) -> bytes:
    return Path(path).read_bytes()


def bank_configs() -> dict[str, BankConfig]:
    """Return the configured banks by id (``BANKS``: a JSON list; key and certificate given as file paths)."""
    banks: list[dict[str, Any]] = json.loads(current_app.config["SETTINGS"].banks_json or "[]")
    return {b["bank_id"]: BankConfig(
        bank_id=b["bank_id"], display_name=b["display_name"], protocol=b["protocol"], url=b["url"],
        merchant_id=b["merchant_id"], bank_sender_id=b["bank_sender_id"],
        our_private_key_pem=_read(b["our_private_key_file"]) if b.get("our_private_key_file") else None,
        bank_certificate_pem=_read(b["bank_certificate_file"])) for b in banks}


def bank(bank_id: str) -> BankLink | None:
    """Return the connector of a configured bank, or None."""
    config = bank_configs().get(bank_id)
    return BankLink(config, DatabaseNonceStore()) if config else None


def smartid_client(settings: Settings) -> SmartIdClient:
    """Return the Smart-ID connector configured from settings (trust anchors read from their files)."""
    anchors = tuple(p.read_bytes() for p in settings.smartid_trust_anchors if p.exists())
    return SmartIdClient(SmartIdConfig(
        base_url=settings.smartid_url, relying_party_uuid=settings.smartid_rp_uuid,
        relying_party_name=settings.smartid_rp_name, trust_anchors_pem=anchors,
        certificate_level=settings.smartid_cert_level, scheme_name=settings.smartid_scheme,
        poll_timeout_ms=1000,  # each page refresh waits at most a second
        fallback_v2_url=settings.smartid_v2_url or None))
