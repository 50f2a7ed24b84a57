"""Identity's public endpoints: discovery, JWKS, health."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from . import db, keys

bp = Blueprint("oidc", __name__)


@bp.get("/.well-known/openid-configuration")
def discovery() -> ResponseReturnValue:
    """Return the OpenID Provider metadata for what identity serves today."""
    issuer = current_app.config["SETTINGS"].issuer
    response = jsonify({
        "issuer": issuer,
        "jwks_uri": f"{issuer}/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
        "acr_values_supported": [
            "http://eidas.europa.eu/LoA/low",
            "http://eidas.europa.eu/LoA/substantial",
            "http://eidas.europa.eu/LoA/high",
        ],
        "subject_types_supported": ["public"],
    })
    response.cache_control.max_age = 300
    return response


@bp.get("/jwks.json")
def jwks() -> ResponseReturnValue:
    """Return the published signing keys (the current one, the next one, those not yet retired)."""
    response = jsonify(keys.jwks(db()))
    response.cache_control.max_age = 300
    return response


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Say the process is up."""
    return jsonify({"status": "ok"})
