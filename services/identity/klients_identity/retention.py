"""Retention: delete what has expired, so that nothing anonymous visitors or finished logins leave behind
grows without end. ``klients-identity purge`` runs ``purge`` once (a Kubernetes CronJob) or every
``--every`` seconds (``make run``, docker-compose).

What goes, and when (``GRACE``: kept a while longer where a row still serves reuse detection):

* ``authorization_codes``: expired more than ``GRACE`` ago (a used code replayed within it still revokes
  what it issued);
* ``refresh_tokens``: once the whole family (every rotation) expired more than ``GRACE`` ago (a rotated
  token replayed while its family lives revokes the family);
* ``login_sessions``: expired more than ``GRACE`` ago, and no refresh token of it still in its family's life;
* ``browser_sessions``, ``bank_returns``, ``used_nonces`` (bank responses, Keycloak logout-token ``jti``s),
  ``email_tokens``, ``rate_limits``: expired (a
  nonce is kept until its response could no longer look fresh);
* ``token_revocations``: older than the longest access-token lifetime (``KEEP_SECONDS``): every token they
  name has expired and fails verification anyway.

Rows go in batches (``batch`` per statement and transaction), so a large backlog never holds long locks.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from sqlalchemy import Table, delete, exists, func, select
from sqlalchemy.engine import Engine

from klients_common.ratelimit import purge_expired
from klients_common.revocations import KEEP_SECONDS

from .models import (
    AuthorizationCode,
    BankReturn,
    BrowserSession,
    EmailToken,
    LoginSession,
    RefreshToken,
    TokenRevocation,
    UsedNonce,
    utcnow,
)

GRACE = timedelta(hours=1)
log = logging.getLogger(__name__)


def _batched(engine: Engine, table: Table, key: str, condition: object, batch: int) -> int:
    """Delete the rows of ``table`` meeting ``condition``, ``batch`` at a time; return how many."""
    total = 0
    column = table.c[key]
    while True:
        chosen = select(column).where(condition).limit(batch).scalar_subquery()  # type: ignore[arg-type]
        with engine.begin() as conn:
            deleted = conn.execute(delete(table).where(column.in_(chosen))).rowcount or 0
        total += deleted
        if deleted < batch:
            return total


def purge(engine: Engine, *, batch: int = 1000, grace: timedelta = GRACE) -> dict[str, int]:
    """Delete every expired row (see the module's table); return the count per table."""
    now = utcnow()
    cutoff = now - grace
    codes = AuthorizationCode.__table__
    tokens = RefreshToken.__table__
    sessions = LoginSession.__table__
    done: dict[str, int] = {}
    done["authorization_codes"] = _batched(engine, codes, "code_hash", codes.c.expires_at < cutoff, batch)  # type: ignore[arg-type]
    ended_families = (select(tokens.c.family_id).group_by(tokens.c.family_id)
                      .having(func.max(tokens.c.expires_at) < cutoff))
    done["refresh_tokens"] = _batched(engine, tokens, "family_id",  # type: ignore[arg-type]
                                      tokens.c.family_id.in_(ended_families), batch)
    family_alive = exists().where(tokens.c.sid == sessions.c.sid, tokens.c.expires_at >= cutoff)
    done["login_sessions"] = _batched(engine, sessions, "sid",  # type: ignore[arg-type]
                                      (sessions.c.expires_at < cutoff) & ~family_alive, batch)
    for model, key in ((BrowserSession, "id_hash"), (BankReturn, "key_hash"), (UsedNonce, "id"),
                       (EmailToken, "token_hash")):
        table = model.__table__
        done[table.name] = _batched(engine, table, key, table.c.expires_at < now, batch)  # type: ignore[arg-type]
    revocations = TokenRevocation.__table__
    done["token_revocations"] = _batched(engine, revocations, "id",  # type: ignore[arg-type]
                                         revocations.c.revoked_at < now - timedelta(seconds=KEEP_SECONDS), batch)
    done["rate_limits"] = purge_expired(engine, batch=batch)
    return done


def purge_command(engine: Engine, *, every: float, batch: int) -> int:
    """Run the retention job once, or for ever every ``every`` seconds (a failed run is retried next time)."""
    while True:
        try:
            counts = purge(engine, batch=batch)
            print("purged " + ", ".join(f"{table} {n}" for table, n in counts.items()), flush=True)
        except Exception:
            if not every:
                raise
            log.exception("purge failed; trying again in %s s", every)
        if not every:
            return 0
        time.sleep(every)
