"""The one place the bench takes the running system from (the suite's stack: fresh databases, identity, the
nameko services, the gateway): every bench module imports it from here."""

from tests.support.stack import (
           BIN,
           Stack,
           admin_uri,
           bus_uri,
           load_env,
           mint_token,
           register_contract,
           start_system,
           wait_until,
)

__all__ = ["BIN", "Stack", "admin_uri", "bus_uri", "load_env", "mint_token", "register_contract", "start_system",
           "wait_until"]
