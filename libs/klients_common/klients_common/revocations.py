"""Revocation that bites now: a grant revoked in identity stops its already-issued access tokens at
every service within a second, not only at the next refresh.

Identity announces ``grant_revoked`` (person, contract, when). Every service instance keeps the recent
ones in memory (``RevocationList``, fed by ``RevocationAware``'s broadcast handler) and ``Caller.require``
refuses a token issued no later than the revocation for that contract. Entries are kept for the longest
access-token lifetime (plus skew): an older token has expired anyway.

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
from datetime import datetime
from typing import Any

from nameko.extensions import DependencyProvider

from .bus import handler

log = logging.getLogger(__name__)
KEEP_SECONDS = 300 + 60


class RevocationList:
    """Recent revocations by (person, contract), with the time they took effect."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self.keep = keep_seconds
        self._revoked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def add(self, person: str, contract: str, at: float) -> None:
        """Record that ``person`` lost ``contract`` at ``at`` (epoch seconds)."""
        with self._lock:
            key = (person, contract)
            self._revoked[key] = max(at, self._revoked.get(key, 0.0))
            cutoff = time.time() - self.keep
            for stale in [k for k, when in self._revoked.items() if when < cutoff]:
                del self._revoked[stale]

    def revoked(self, person: str, contract: str, issued_at: float) -> bool:
        """Return whether a token issued at ``issued_at`` predates a revocation of this grant."""
        at = self._revoked.get((person, contract))
        return at is not None and issued_at <= math.floor(at)


REVOCATIONS = RevocationList()  # one per process, shared by every container in it


class RevocationsAtStart(DependencyProvider):
    """Loads the revocations still in force from identity before the service's entrypoints start."""

    def setup(self) -> None:
        """Ask identity (as this component's broker user) for what was revoked within ``KEEP_SECONDS``."""
        from .rpc import RpcClient, RpcError

        config = self.container.config
        deadline = time.monotonic() + float(config["REVOCATIONS_LOAD_SECONDS"])
        client = RpcClient(config["AMQP_URI"], timeout=5)
        try:
            while True:
                try:
                    revoked = client.call("identity", "revocations_in_force")
                    break
                except RpcError as exc:
                    if time.monotonic() > deadline:
                        log.error("identity did not give the revocations in force (%s): starting without them",
                                  type(exc).__name__)
                        return
                    time.sleep(1)
        finally:
            client.close()
        for item in revoked:
            REVOCATIONS.add(item["subject"], item["contract"], datetime.fromisoformat(item["revoked_at"]).timestamp())
        log.info("%d revocations in force loaded from identity", len(revoked))


class RevocationAware:
    """Mixin for nameko services: the revocations in force at start, then every instance hears identity's
    ``grant_revoked`` (broadcast)."""

    revocations_at_start = RevocationsAtStart()

    @handler("grant_revoked")
    def on_grant_revoked(self, payload: Any) -> None:
        """Remember the revocation so tokens issued before it are refused at once."""
        try:
            at = datetime.fromisoformat(payload["revoked_at"]).timestamp()
            REVOCATIONS.add(str(payload["subject"]), str(payload["contract"]), at)
        except (KeyError, TypeError, ValueError):
            log.error("malformed grant_revoked event ignored")
