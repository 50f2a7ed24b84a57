"""Reading configuration from the environment: the helpers each service's ``settings`` module uses.

Each service keeps its own ``settings.py`` listing every variable it reads with its default; these
helpers only parse. Defaults suit ``make run`` on one machine; production sets every value.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def env_str(name: str, default: str) -> str:
    """Return the variable ``name`` or ``default``."""
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    """Return the variable ``name`` as an int, or ``default``."""
    value = os.environ.get(name)
    return default if value in (None, "") else int(value)


def env_float(name: str, default: float) -> float:
    """Return the variable ``name`` as a float, or ``default``."""
    value = os.environ.get(name)
    return default if value in (None, "") else float(value)


def env_bool(name: str, default: bool) -> bool:
    """Return the variable ``name`` as a boolean (1/true/yes/on), or ``default``."""
    value = os.environ.get(name)
    return default if value in (None, "") else value.strip().lower() in ("1", "true", "yes", "on")


def env_json(name: str, default: Any) -> Any:
    """Return the variable ``name`` parsed as JSON, or ``default``."""
    value = os.environ.get(name)
    return default if value in (None, "") else json.loads(value)


def var_dir() -> Path:
    """Return the folder for local state (SQLite files, keys, mail): ``KLIENTS_VAR_DIR``, default ``./var``."""
    path = Path(env_str("KLIENTS_VAR_DIR", "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url(service: str) -> str:
    """Return ``<SERVICE>_DATABASE_URL``, else a SQLite file ``var/<service>.db``."""
    return env_str(f"{service.upper()}_DATABASE_URL", f"sqlite:///{var_dir() / (service + '.db')}")


AMQP_URI_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"
BUS_USER_PREFIX_DEFAULT = "klients-"
IDENTITY_URL_DEFAULT = "http://127.0.0.1:8001"
API_AUDIENCE_DEFAULT = "klients-api"


def token_issuers() -> list[dict[str, Any]]:
    """Return the trusted issuers (``TOKEN_ISSUERS`` JSON), by default identity itself."""
    return env_json(
        "TOKEN_ISSUERS",
        [{"issuer": env_str("IDENTITY_ISSUER", IDENTITY_URL_DEFAULT), "audience": API_AUDIENCE_DEFAULT}],
    )


def bus_config() -> dict[str, Any]:
    """Return the bus settings every component and ``klients-bus`` share (docs/bus.md)."""
    return {
        "BUS_USER_PREFIX": env_str("BUS_USER_PREFIX", BUS_USER_PREFIX_DEFAULT),  # users are <prefix><component>
        "BUS_DELIVERY_LIMIT": env_int("BUS_DELIVERY_LIMIT", 5),  # deliveries before a failing event is dead
        # How long a transient failure is retried in place: under RabbitMQ's 30-minute consumer timeout, which
        # would close the channel under a message held longer.
        "BUS_RETRY_SECONDS": env_int("BUS_RETRY_SECONDS", 600),
    }


def nameko_config(service: str, **extra: Any) -> dict[str, Any]:
    """Return the nameko config every service shares; ``extra`` adds service-specific keys."""
    config: dict[str, Any] = {
        "AMQP_URI": env_str("AMQP_URI", AMQP_URI_DEFAULT),
        "max_workers": env_int("MAX_WORKERS", 10),
        "HEARTBEAT": env_int("AMQP_HEARTBEAT", 60),
        "TOKEN_ISSUERS": token_issuers(),
        "TOKEN_LEEWAY": env_int("TOKEN_LEEWAY", 30),
        "DATABASE_URL": database_url(service),
        # The bus (klients_common.bus): exchanges are declared by `migrate`, not by the running services.
        "DECLARE_EVENT_EXCHANGES": False,
        **bus_config(),
        # How long a starting instance waits for identity's revocations in force (klients_common.revocations).
        "REVOCATIONS_LOAD_SECONDS": env_int("REVOCATIONS_LOAD_SECONDS", 30),
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"()": "klients_common.jsonlog.PlainFormatter",
                          "fmt": "%(asctime)s %(levelname)s [" + service + "] %(name)s: %(message)s"},
                "json": {"()": "klients_common.jsonlog.JsonFormatter"},
            },
            "filters": {"quiet_expected": {"()": "klients_common.jsonlog.QuietExpected"}},
            "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["quiet_expected"],
                                     "formatter": "json" if env_str("LOG_FORMAT", "json") == "json" else "plain"}},
            "root": {"level": env_str("LOG_LEVEL", "INFO"), "handlers": ["console"]},
        },
    }
    config.update(extra)
    return config
