"""Revocation that bites now: a grant revoked in identity, or a token or login revoked there, stops the
already-issued access tokens at every service within a second, not only at the next refresh.

Identity announces two kinds of revocation, and every service instance keeps the recent ones in memory
(``RevocationList``, fed by ``RevocationAware``'s broadcast handlers):

- ``grant_revoked`` (person, contract, when): ``Caller.require`` refuses a token issued no later than the
  revocation, for that contract only;
- ``token_revoked`` (``jti``: one access token, revoked at ``/revoke``; or ``sid``: every token of a login,
  optionally at one client only, after logout, a password change, ``/revoke`` of a refresh token, or a
  reused authorization code or refresh token): ``Caller.token`` refuses every such token issued no later
  than the revocation, whatever it is used for.

Entries are kept for the longest access-token lifetime (plus skew): an older token has expired anyway.

A starting instance first asks identity for the revocations still in force (``RevocationsAtStart``, before
any entrypoint of the service starts), so a restart forgets nothing. If identity does not answer within
``REVOCATIONS_LOAD_SECONDS`` (30), the instance starts anyway and says so in an error line: a token it would
have caught expires within five minutes. An instance that loses its broker connection while running misses
the announcements made meanwhile, with the same bound.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nameko.extensions import DependencyProvider

from .bus import handler

log = logging.getLogger(__name__)
KEEP_SECONDS = 300 + 60
TOKEN_KINDS = ("jti", "sid")


class RevocationList:
    """Recent revocations by (person, contract), with the time they took effect."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep = keep_seconds
        self._revoked: dict[tuple[str, str], float] = {}
        self._tokens: dict[tuple[str, str, str | None], float] = {}  # (kind, value, client or None) -> when
        self._lock = threading.Lock()

    def add(self, person: str, contract: str, at: float) -> None:
        """Record that ``person`` lost ``contract`` at ``at`` (epoch seconds)."""
        self._put(self._revoked, (person, contract), at)

    def revoked(self, person: str, contract: str, issued_at: float) -> bool:
        """Return whether a token issued at ``issued_at`` predates a revocation of this grant."""
        at = self._revoked.get((person, contract))
        return at is not None and issued_at <= math.floor(at)

    def add_token(self, kind: str, value: str, client_id: str | None, at: float) -> None:
        """Record that the access token ``jti`` (kind ``jti``) or the tokens of login ``sid`` (kind ``sid``; at
        ``client_id`` only, if given) were revoked at ``at`` (epoch seconds)."""
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token revocation kind {kind!r}")
        self._put(self._tokens, (kind, value, client_id or None), at)

    def token_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Return whether a token with these (verified) claims was revoked after it was issued."""
        if not self._tokens:
            return False
        try:
            issued_at = float(claims["iat"])
        except (KeyError, TypeError, ValueError):
            return True
        client = claims.get("client_id") or claims.get("azp")
        for key in (("jti", claims.get("jti"), None), ("sid", claims.get("sid"), None),
                    ("sid", claims.get("sid"), client)):
            at = self._tokens.get(key)  # type: ignore[arg-type]
            if at is not None and issued_at <= math.floor(at):
                return True
        return False

    def _put(self, entries: dict[Any, float], key: Any, at: float) -> None:
        with self._lock:
            entries[key] = max(at, entries.get(key, 0.0))
            cutoff = time.time() - self.keep
            tables: tuple[dict[Any, float], ...] = (self._revoked, self._tokens)
            for table in tables:
                for stale in [k for k, when in table.items() if when < cutoff]:
                    del table[stale]


REVOCATIONS = RevocationList()  # one per process, shared by every container in it


def apply_in_force(in_force: Any) -> int:
    """Load identity's answer to ``revocations_in_force`` into ``REVOCATIONS``; return how many entries."""
    if isinstance(in_force, list):  # an identity from before token revocations: grants only
        in_force = {"grants": in_force, "tokens": []}
    for item in in_force["grants"]:
        REVOCATIONS.add(item["subject"], item["contract"], datetime.fromisoformat(item["revoked_at"]).timestamp())
    for item in in_force["tokens"]:
        REVOCATIONS.add_token(item["kind"], item["value"], item.get("client_id"),
                              datetime.fromisoformat(item["revoked_at"]).timestamp())
    return len(in_force["grants"]) + len(in_force["tokens"])


class RevocationsAtStart(DependencyProvider):
    """Loads the revocations still in force from identity before the service's entrypoints start."""

    def setup(self) -> None:
        """Load what was revoked within ``KEEP_SECONDS``; give up (with an error line) after
        ``REVOCATIONS_LOAD_SECONDS``."""
        in_force = self.fetch()
        if in_force is not None:
            log.info("%d revocations in force loaded", apply_in_force(in_force))

    def fetch(self) -> Any:
        """Ask identity, as this component's broker user (identity overrides this: it reads its database)."""
        from .rpc import RpcClient, RpcError

        config = self.container.config
        deadline = time.monotonic() + float(config["REVOCATIONS_LOAD_SECONDS"])
        client = RpcClient(config["AMQP_URI"], timeout=5)
        try:
            while True:
                try:
                    return client.call("identity", "revocations_in_force")
                except RpcError as exc:
                    if time.monotonic() > deadline:
                        log.error("identity did not give the revocations in force (%s): starting without them",
                                  type(exc).__name__)
                        return None
                    time.sleep(1)
        finally:
            client.close()


class TokenRevocationAware:
    """Mixin for nameko services that take access tokens: every instance hears identity's ``token_revoked``
    (broadcast) and ``Caller.token`` refuses the tokens it names."""

    @handler("token_revoked")
    def on_token_revoked(self, payload: Any) -> None:
        """Remember the revocation so the tokens it names are refused at once (the payload matched the
        event's schema before this runs)."""
        REVOCATIONS.add_token(payload["kind"], payload["value"], payload.get("client_id"),
                              datetime.fromisoformat(payload["revoked_at"]).timestamp())


class RevocationAware(TokenRevocationAware):
    """Mixin for billing and metering: the revocations in force at start, then every instance hears identity's
    ``grant_revoked`` and ``token_revoked`` (broadcast)."""

    revocations_at_start = RevocationsAtStart()

    @handler("grant_revoked")
    def on_grant_revoked(self, payload: Any) -> None:
        """Remember the revocation so tokens issued before it are refused at once."""
        try:
            at = datetime.fromisoformat(payload["revoked_at"]).timestamp()
            REVOCATIONS.add(str(payload["subject"]), str(payload["contract"]), at)
        except (KeyError, TypeError, ValueError):
            log.error("malformed grant_revoked event ignored")
