"""Structured logs: one JSON object per line, with the request id of the request (or RPC call) being
served, for every service and the gateway.

Nothing secret goes in: records carry what the code logs (which never includes tokens, passwords or
personal codes) plus ``request_id``; the gateway's access lines name the route template, not the raw URL
(query strings can hold e-mail addresses and signatures). What libraries log is redacted of URL passwords
(``amqp://user:****@host``): nameko and kombu name the broker URI when a connection fails, and hide the
password of the first URI of a fail-over list only.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """Return ``text`` with the password of every ``scheme://user:password@`` replaced by ``****``."""
    return URL_PASSWORD.sub(r"\1****@", text)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line: time (UTC), level, logger, message, request id, extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(), "logger": record.name, "msg": redact(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        entry.update({k: v for k, v in record.__dict__.items() if k not in STANDARD and k != "request_id"})
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """Plain text lines, URL passwords redacted like ``JsonFormatter``'s."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class QuietExpected(logging.Filter):
    """Drop the traceback of nameko's "(expected) error handling worker" warnings: a 404 or 422 a service
    answered on purpose is worth one line, not forty."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.WARNING and str(record.msg).startswith("(expected)"):
            record.exc_info, record.exc_text = None, None
        return True


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Send the root logger's records to stderr, as JSON lines (``fmt="json"``) or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         PlainFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
