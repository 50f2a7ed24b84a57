"""Identity's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``IDENTITY_ISSUER`` | ``http://127.0.0.1:8001`` | the ``iss`` of every token; identity's public base URL |
| ``IDENTITY_DATABASE_URL`` | ``sqlite:///var/identity.db`` | persons, grants, signing keys |
| ``API_AUDIENCE`` | ``klients-api`` | ``aud`` of access tokens for the gateway and services |
| ``ACCESS_TOKEN_TTL`` | ``300`` | access-token lifetime in seconds (at most 300, product.md §4) |
| ``KEY_PUBLISH_AHEAD`` | ``600`` | seconds a new signing key is published before it signs (≥ the JWKS cache TTL) |
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
"""

from __future__ import annotations

from dataclasses import dataclass

from klients_common.settings import (
    AMQP_URI_DEFAULT,
    API_AUDIENCE_DEFAULT,
    IDENTITY_URL_DEFAULT,
    database_url,
    env_int,
    env_str,
)


@dataclass(frozen=True)
class Settings:
    """Identity's settings, read once at start-up."""

    issuer: str
    database_url: str
    api_audience: str
    access_token_ttl: int
    key_publish_ahead: int
    amqp_uri: str

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment."""
        ttl = env_int("ACCESS_TOKEN_TTL", 300)
        if not 0 < ttl <= 300:
            raise ValueError("ACCESS_TOKEN_TTL must be between 1 and 300 seconds")
        return cls(
            issuer=env_str("IDENTITY_ISSUER", IDENTITY_URL_DEFAULT).rstrip("/"),
            database_url=database_url("identity"),
            api_audience=env_str("API_AUDIENCE", API_AUDIENCE_DEFAULT),
            access_token_ttl=ttl,
            key_publish_ahead=env_int("KEY_PUBLISH_AHEAD", 600),
            amqp_uri=env_str("AMQP_URI", AMQP_URI_DEFAULT),
        )
