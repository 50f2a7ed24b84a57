"""The gateway's configuration: every environment variable it reads, with its default.

| variable | default | meaning |
|---|---|---|
| ``AMQP_URI`` | ``amqp://guest:guest@127.0.0.1:5672/`` | the bus |
| ``TOKEN_ISSUERS`` | identity at ``IDENTITY_ISSUER`` (``http://127.0.0.1:8001``), audience ``klients-api`` | whose access tokens are accepted (JSON list) |
| ``TOKEN_LEEWAY`` | ``30`` | clock skew allowed, seconds |
| ``RPC_TIMEOUT`` | ``5`` | seconds to wait for a service before answering 503 |
| ``READY_SERVICES`` | ``billing,metering,notifications,identity`` | services ``/readyz`` asks |
| ``RATE_LIMIT_IP`` / ``RATE_LIMIT_PERSON`` | ``600/minute`` / ``300/minute`` | API requests per client address and per person (token ``sub``), all routes together |
| ``RATE_LIMIT_STORAGE`` | ``memory://`` | where counts live: ``memory://`` is one process only; give an SQL database's URL (``postgresql+psycopg2://…``, ``sqlite:///…``: a ``rate_limits`` table there) or ``redis://host:6379`` when several workers or instances run |
| ``TRUSTED_PROXIES`` | ``0`` | reverse proxies in front whose ``X-Forwarded-For`` is believed |
| ``LOG_FORMAT`` | ``json`` | ``json`` (one object per line) or ``text`` |
| ``GATEWAY_INTERNAL_BIND`` | ``127.0.0.1:8010`` | the internal port (a second bind of the same server) serving ``/metrics`` and ``/readyz``; the public port answers 404 for them. Keep it reachable from the host or the cluster only |
| ``MAX_REQUEST_BYTES`` | ``1048576`` | the largest request body accepted (413 before reading more); the provider's callback accepts 16 KiB |
| ``CORS_ORIGINS`` | ``http://127.0.0.1:3000,http://localhost:3000`` | portal origins browsers may call the API from (nothing else gets CORS headers) |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from klients_common.settings import AMQP_URI_DEFAULT, env_float, env_int, env_str, token_issuers

INTERNAL_BIND_DEFAULT = "127.0.0.1:8010"


@dataclass(frozen=True)
class Settings:
    """The gateway's settings, read once at start-up."""

    amqp_uri: str
    token_issuers: list[dict[str, Any]]
    token_leeway: int
    rpc_timeout: float
    ready_services: tuple[str, ...]
    cors_origins: tuple[str, ...]
    rate_limit_ip: str
    rate_limit_person: str
    rate_limit_storage: str
    trusted_proxies: int
    log_format: str
    internal_bind: str = INTERNAL_BIND_DEFAULT
    max_request_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment."""
        return cls(
            amqp_uri=env_str("AMQP_URI", AMQP_URI_DEFAULT),
            token_issuers=token_issuers(),
            token_leeway=env_int("TOKEN_LEEWAY", 30),
            rpc_timeout=env_float("RPC_TIMEOUT", 5.0),
            ready_services=tuple(
                s for s in env_str("READY_SERVICES", "billing,metering,notifications,identity").split(",") if s),
            cors_origins=tuple(o.strip() for o in env_str(
                "CORS_ORIGINS", "http://127.0.0.1:3000,http://localhost:3000").split(",") if o.strip()),
            rate_limit_ip=env_str("RATE_LIMIT_IP", "600/minute"),
            rate_limit_person=env_str("RATE_LIMIT_PERSON", "300/minute"),
            rate_limit_storage=env_str("RATE_LIMIT_STORAGE", "memory://"),
            trusted_proxies=env_int("TRUSTED_PROXIES", 0),
            log_format=env_str("LOG_FORMAT", "json"),
            internal_bind=internal_bind(),
            max_request_bytes=env_int("MAX_REQUEST_BYTES", 1024 * 1024),
        )


def internal_bind() -> str:
    """Return where the internal port listens (``GATEWAY_INTERNAL_BIND``)."""
    return env_str("GATEWAY_INTERNAL_BIND", INTERNAL_BIND_DEFAULT)
