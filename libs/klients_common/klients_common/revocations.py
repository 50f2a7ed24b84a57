"""Revocation that bites now: a grant revoked in identity stops its already-issued access tokens at
every service within a second, not only at the next refresh.

Identity announces ``grant_revoked`` (person, contract, when). Every service instance keeps the recent
ones in memory (``RevocationList``, fed by ``RevocationAware``'s broadcast handler) and ``Caller.require``
refuses a token issued no later than the revocation for that contract. Entries are kept for the longest
access-token lifetime (plus skew): an older token has expired anyway. An instance that is disconnected
while a revocation is announced misses it; the token it would have caught expires within five minutes.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime
from typing import Any

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


class RevocationAware:
    """Mixin for nameko services: every instance hears identity's ``grant_revoked`` (broadcast)."""

    @handler("grant_revoked")
    def on_grant_revoked(self, payload: Any) -> None:
        """Remember the revocation so tokens issued before it are refused at once."""
        try:
            at = datetime.fromisoformat(payload["revoked_at"]).timestamp()
            REVOCATIONS.add(str(payload["subject"]), str(payload["contract"]), at)
        except (KeyError, TypeError, ValueError):
            log.error("malformed grant_revoked event ignored")
