"""``klients-bus``: set up the broker for Klients, and print what the bus is made of.

    klients-bus setup [--fresh]     # vhost, one user per component with its permissions, the whole topology
    klients-bus uri COMPONENT       # the AMQP URI a component connects with (for scripts)
    klients-bus catalogue           # docs/events.md, from the event catalogue in code
    klients-bus permissions         # each component's permissions, as RabbitMQ will hold them

``setup`` talks to RabbitMQ's management HTTP API with an administrator's credentials (``BUS_ADMIN_USER``,
``BUS_ADMIN_PASSWORD`` or a file named by ``BUS_ADMIN_PASSWORD_FILE``, ``BUS_MANAGEMENT_URL``) and declares
the topology over AMQP as that administrator.
It is idempotent: run it on every deploy. Each component's password comes from ``BUS_PASSWORD_<COMPONENT>``
or, when that is not set, from ``<BUS_SECRETS_DIR>/<component>`` (created with a random password the first
time; development and tests). ``--fresh`` deletes the vhost first (the test suite starts from nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from kombu.connection import Connection
from kombu.entity import Exchange

from .bus import SERVICES, declare, events_exchange, permissions, topic_permissions
from .events import catalogue_markdown, events_of
from .settings import bus_config

BROKER_COMPONENTS = tuple(SERVICES)


class Settings:
    """The environment ``klients-bus`` reads."""

    def __init__(self) -> None:
        env = os.environ
        self.management_url = env.get("BUS_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
        self.admin_user = env.get("BUS_ADMIN_USER", "klients-admin")
        self.admin_password = env.get("BUS_ADMIN_PASSWORD") or self._read(env.get("BUS_ADMIN_PASSWORD_FILE"))
        self.host = env.get("BUS_HOST", "127.0.0.1:5672")
        self.vhost = env.get("BUS_VHOST", "/")
        shared = bus_config()
        self.prefix = shared["BUS_USER_PREFIX"]
        self.delivery_limit = shared["BUS_DELIVERY_LIMIT"]
        self.secrets_dir = Path(env.get("BUS_SECRETS_DIR", "var/bus"))
        self.keycloak_fronted = env.get("PORTAL_TOKEN_ISSUER", "identity") == "keycloak"

    @staticmethod
    def _read(path: str | None) -> str:
        return Path(path).read_text().strip() if path and Path(path).exists() else ""

    def password(self, component: str, create: bool = False) -> str:
        """Return the component's broker password (from the environment, else its secret file)."""
        given = os.environ.get(f"BUS_PASSWORD_{component.upper()}")
        if given:
            return given
        path = self.secrets_dir / component
        if not path.exists():
            if not create:
                raise SystemExit(f"no password for {component}: set BUS_PASSWORD_{component.upper()} or run "
                                 "klients-bus setup")
            self.secrets_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def uri(self, user: str, password: str) -> str:
        """Return an AMQP URI on the vhost."""
        return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{self.host}/{quote(self.vhost, safe='')}"

    def component_uri(self, component: str, create: bool = False) -> str:
        """Return the AMQP URI ``component`` connects with (``create``: make its password if it has none)."""
        return self.uri(self.prefix + component, self.password(component, create=create))

    def admin_uri(self) -> str:
        """Return the administrator's AMQP URI on the vhost."""
        return self.uri(self.admin_user, self.admin_password)


def setup(settings: Settings, *, fresh: bool = False) -> None:
    """Create the vhost, the users and their permissions, and declare every component's topology."""
    api = requests.Session()
    api.auth = (settings.admin_user, settings.admin_password)
    vhost = quote(settings.vhost, safe="")

    def call(method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201, 204)) -> None:
        answer = api.request(method, f"{settings.management_url}/api/{path}", json=body, timeout=30)
        if answer.status_code not in ok:
            raise SystemExit(f"RabbitMQ management API: {method} /api/{path} answered {answer.status_code}: "
                             f"{answer.text[:300]}")

    if fresh:
        call("DELETE", f"vhosts/{vhost}", ok=(204, 404))
    call("PUT", f"vhosts/{vhost}", {})
    call("PUT", f"permissions/{vhost}/{quote(settings.admin_user, safe='')}",
         {"configure": ".*", "write": ".*", "read": ".*"})
    for component in BROKER_COMPONENTS:
        user = settings.prefix + component
        name = quote(user, safe="")
        call("PUT", f"users/{name}", {"password": settings.password(component, create=True), "tags": ""})
        call("PUT", f"permissions/{vhost}/{name}", permissions(component, user))
        call("DELETE", f"topic-permissions/{vhost}/{name}", ok=(204, 404))
        for topic in topic_permissions(component, user):
            call("PUT", f"topic-permissions/{vhost}/{name}", topic)
    with Connection(settings.admin_uri(), connect_timeout=10) as connection:  # every events exchange first:
        channel = connection.channel()  # a component binds to its sources' exchanges, which it may not declare
        for producer in BROKER_COMPONENTS:
            if events_of(producer):
                Exchange(events_exchange(producer), type="topic", durable=True)(channel).declare()
    optional = ("identity_keycloak_sync",) if settings.keycloak_fronted else ()
    for component in BROKER_COMPONENTS:
        declare(settings.admin_uri(), component, settings.delivery_limit, optional=optional)


def main(argv: list[str] | None = None) -> int:
    """Run one ``klients-bus`` command."""
    parser = argparse.ArgumentParser(prog="klients-bus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    setup_cmd = sub.add_parser("setup", help="vhost, users, permissions and topology (idempotent)")
    setup_cmd.add_argument("--fresh", action="store_true", help="delete the vhost first (tests)")
    uri = sub.add_parser("uri", help="print the AMQP URI a component connects with")
    uri.add_argument("component", choices=BROKER_COMPONENTS)
    sub.add_parser("catalogue", help="print docs/events.md")
    sub.add_parser("permissions", help="print each component's permissions as JSON")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.command == "setup":
        setup(settings, fresh=args.fresh)
        users = ", ".join(settings.prefix + c for c in BROKER_COMPONENTS)
        print(f"klients-bus: vhost {settings.vhost!r} ready: users {users}")
    elif args.command == "uri":
        print(settings.component_uri(args.component))
    elif args.command == "catalogue":
        sys.stdout.write(catalogue_markdown())
    else:
        print(json.dumps({c: {"permissions": permissions(c, settings.prefix + c),
                              "topic_permissions": topic_permissions(c, settings.prefix + c)}
                          for c in BROKER_COMPONENTS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
