"""Rate-limit counters in a service's own SQL database, shared by every worker and instance.

A storage backend for the ``limits`` library (which flask-limiter uses): one row per counter in the
``rate_limits`` table, each hit one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` statement (SQLite 3.35+
and PostgreSQL). It serves the fixed-window strategy and the sliding-window counter (two fixed windows,
the previous one weighted). Expired rows are harmless (the upsert restarts them) and are deleted by
``purge_expired`` (identity's retention job, ``klients-identity purge``).

``RATE_LIMIT_STORAGE`` chooses where counts live (``limiter_storage``):

* ``database``: the service's own database (identity's default; needs the ``rate_limits`` table, which
  identity's migrations create);
* an SQLAlchemy URL (``postgresql+psycopg2://…``, ``sqlite:///…``): that database (the table is created
  there if missing; how the gateway, which has no database of its own, shares counts);
* anything else the ``limits`` library knows (``redis://host:6379``, ``memory://`` for one process only).

**Pre-counting in the process** (limits of at least ``1 / tolerance`` hits, fixed-window and sliding-window counter
alike): writing the shared counter on every hit was the largest single cost of identity's refresh grant (an upsert
in a transaction of its own, and PostgreSQL's CPU for it), and of the gateway's reads on the embedded default (two
sliding-window limits per request, each a read and a write transaction on SQLite). A process now counts hits of a
limit of ``N`` in memory and adds them to the shared counter in batches of ``B = ⌊N × tolerance⌋`` (``tolerance``
2 % by default) or once a second, whichever comes first; each write returns the shared count, which the process's
count starts from again. Its decisions use the shared count it last saw plus its own hits since. So across ``P``
processes (workers × instances) a window admits at most ``N + P × (B − 1)`` hits: for 2,000/minute and 4 processes,
2,156. A limit below ``1 / tolerance`` (50 hits at 2 %: the login, password and mail limits) is counted exactly,
every hit written at once. The sliding-window counter pre-counts its current window the same way; the previous
window, which only other processes' last batches can still change, is read from the database once per process and
window.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from math import floor
from typing import Any

from limits.storage import MemoryStorage, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, bindparam, case, delete, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

SCHEME = "klients-sql"
MAX_KEY = 255
TOLERANCE = 0.02  # a process may count this share of a limit before writing it to the shared counter
FLUSH_SECONDS = 1.0  # and writes what it counted at least this often while the limit is being hit
LOCAL_KEYS = 10_000  # pre-counted keys kept per process before the expired ones are dropped


def rate_limits_table(metadata: MetaData) -> Table:
    """Return the ``rate_limits`` table in ``metadata``: one counter per key, until ``expires_at`` (Unix
    seconds, UTC)."""
    return Table(
        "rate_limits", metadata,
        Column("key", String(MAX_KEY), primary_key=True),
        Column("count", Integer, nullable=False),
        Column("expires_at", Float(53), nullable=False, index=True),
    )


_METADATA = MetaData()
TABLE = rate_limits_table(_METADATA)


def _key(key: str) -> str:
    """Keep keys within the column (a long key is replaced by its hash)."""
    return key if len(key) <= MAX_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class SqlStorage(Storage, SlidingWindowCounterSupport, TimestampedSlidingWindow):
    """``limits`` storage on an SQL database (``klients-sql://``; give ``engine=`` or ``url=``)."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - the limits library reads it from the class

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine: Engine | None = None,
                 url: str | None = None, create_table: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        if engine is None:
            if not url:
                raise ValueError("klients-sql storage needs engine= or url=")
            from .db import make_engine

            engine = make_engine(url)
        self.engine = engine
        if create_table:
            _METADATA.create_all(engine, checkfirst=True)
        insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(TABLE)
        now, amount, expiry = bindparam("now"), bindparam("amount"), bindparam("expiry")
        stale = TABLE.c.expires_at <= now
        self._incr = insert.values(key=bindparam("key"), count=amount, expires_at=now + expiry).on_conflict_do_update(
            index_elements=[TABLE.c.key],
            set_={"count": case((stale, amount), else_=TABLE.c.count + amount),
                  "expires_at": case((stale, now + expiry), else_=TABLE.c.expires_at)},
        ).returning(TABLE.c.count, TABLE.c.expires_at)
        self._seen = threading.local()  # this thread's last counts: key -> (count, expires_at, when)
        self.tolerance = float(options.get("tolerance", TOLERANCE))
        self._local: dict[str, list[float]] = {}  # key -> [shared count seen, own hits since, expires_at, when]
        self._local_lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        """Errors of the database."""
        return SQLAlchemyError

    def _batch(self, key: str) -> int:
        """Return how many hits of ``key`` the process may count before writing them (1: every hit at once).
        The limit is read from the key ``limits`` makes for a fixed window (``…/<amount>/<multiples>/<unit>``),
        or for one window of a sliding-window counter (the same, then ``/<window number>``)."""
        parts = key.rsplit("/", 4)
        if len(parts) == 5 and parts[4].isdigit() and parts[3].isalpha():
            parts = parts[:4]
        parts = "/".join(parts).rsplit("/", 3)
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit() or not parts[3].isalpha():
            return 1
        return max(1, floor(int(parts[1]) * self.tolerance))

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter (restarting it, to expire in ``expiry`` s, when it has expired); a
        limit large enough is pre-counted in the process and written in batches (module docstring)."""
        if (batch := self._batch(_key(key))) <= 1:
            return self._write(key, expiry, amount)[0]
        now, ticks = time.time(), time.monotonic()
        with self._local_lock:
            entry = self._local.get(_key(key))
            if entry is None or entry[2] <= now:
                if len(self._local) > LOCAL_KEYS:
                    self._local = {k: v for k, v in self._local.items() if v[2] > now}
                entry = self._local[_key(key)] = [0, 0, now + expiry, ticks]
            entry[1] += amount
            if entry[1] < batch and ticks - entry[3] < FLUSH_SECONDS:
                count = int(entry[0] + entry[1])
                self._remember(_key(key), (count, entry[2]))
                return count
            pending, entry[1], entry[3] = entry[1], 0, ticks
        count, expires_at = self._write(key, expiry, int(pending))
        with self._local_lock:
            entry[0], entry[2] = count, expires_at
            return int(count + entry[1])

    def _write(self, key: str, expiry: int, amount: int) -> tuple[int, float]:
        with self.engine.begin() as conn:
            count, expires_at = conn.execute(self._incr, {"key": _key(key), "now": time.time(), "amount": amount,
                                                          "expiry": float(expiry)}).one()
        self._remember(_key(key), (int(count), float(expires_at)))
        return int(count), float(expires_at)

    def decr(self, key: str, amount: int = 1) -> None:
        """Take ``amount`` back (a sliding-window hit that lost a race, or past the limit): from the process's
        own hits not yet written when it has that many, else from the shared counter."""
        self._remember(_key(key), None)
        with self._local_lock:
            entry = self._local.get(_key(key))
            if entry is not None and entry[1] >= amount:
                entry[1] -= amount
                return
            if entry is not None:
                entry[0] -= amount
        with self.engine.begin() as conn:
            conn.execute(TABLE.update().where(TABLE.c.key == _key(key)).values(count=TABLE.c.count - amount))

    # flask-limiter reads a counter back right after counting a hit (the window's remaining hits and its reset
    # time, for the RateLimit headers: three more queries per request, a third of identity's CPU per refresh
    # grant in the bench's profile). The count this thread's own hit returned, for RECENT seconds, answers
    # those reads; the decision itself always comes from the database's count.
    RECENT = 0.5

    def _remember(self, key: str, value: tuple[int, float] | None) -> None:
        seen = self._seen.__dict__.setdefault("counts", {})
        seen.clear()  # only the last counter this thread touched
        if value is not None:
            seen[key] = (*value, time.monotonic())

    def _recent(self, keys: list[str]) -> dict[str, tuple[int, float]] | None:
        seen = self._seen.__dict__.get("counts", {})
        now, found = time.monotonic(), {}
        for key in keys:
            if key not in seen or now - seen[key][2] > self.RECENT:
                return None
            found[key] = seen[key][:2]
        return {k: v for k, v in found.items() if v[1] > time.time()}

    def _forget(self, key: str | None) -> None:
        with self._local_lock:
            if key is None:
                self._local.clear()
            else:
                self._local.pop(key, None)

    def _live(self, keys: list[str]) -> dict[str, tuple[int, float]]:
        now = time.time()
        with self._local_lock:  # pre-counted limits: the process's own view (shared count seen + own hits)
            local = {_key(k): self._local.get(_key(k)) for k in keys}
        if all(v is not None and v[2] > now for v in local.values()):
            return {k: (int(v[0] + v[1]), v[2]) for k, v in local.items() if v is not None}
        if (recent := self._recent([_key(k) for k in keys])) is not None:
            return recent
        with self.engine.connect() as conn:
            rows = conn.execute(select(TABLE.c.key, TABLE.c.count, TABLE.c.expires_at).where(
                TABLE.c.key.in_([_key(k) for k in keys]), TABLE.c.expires_at > time.time()))
            return {row.key: (int(row.count), float(row.expires_at)) for row in rows}

    def get(self, key: str) -> int:
        """Return the counter (0 when absent or expired)."""
        return self._live([key]).get(_key(key), (0, 0.0))[0]

    def get_expiry(self, key: str) -> float:
        """Return when the counter expires (Unix time; now when absent)."""
        return self._live([key]).get(_key(key), (0, time.time()))[1]

    def check(self) -> bool:
        """Return whether the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        """Delete every counter."""
        self._remember("", None)
        self._forget(None)
        with self.engine.begin() as conn:
            return int(conn.execute(delete(TABLE)).rowcount or 0)

    def clear(self, key: str) -> None:
        """Delete one counter."""
        self._remember(_key(key), None)
        self._forget(_key(key))
        with self.engine.begin() as conn:
            conn.execute(delete(TABLE).where(TABLE.c.key == _key(key)))

    # -- sliding window counter: the previous and the current fixed window, the previous one weighted --

    def _window(self, key: str, expiry: int, now: float) -> tuple[str, tuple[int, float, int, float]]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        if self._batch(_key(current_key)) > 1:  # pre-counted: the previous window read once, then kept
            self._keep_previous(previous_key, expiry, now)
        live = self._live([previous_key, current_key])
        previous = live.get(_key(previous_key), (0, 0.0))[0]
        current = live.get(_key(current_key), (0, 0.0))[0]
        previous_ttl = (1 - (((now - expiry) / expiry) % 1)) * expiry if previous else 0.0
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return current_key, (previous, previous_ttl, current, current_ttl)

    def _keep_previous(self, previous_key: str, expiry: int, now: float) -> None:
        """Keep the previous window's shared count in the process (read once per window: only other
        processes' last batches can still add to it)."""
        with self._local_lock:
            entry = self._local.get(_key(previous_key))
            if entry is not None and entry[2] > now:
                return
        with self.engine.connect() as conn:
            row = conn.execute(select(TABLE.c.count, TABLE.c.expires_at).where(
                TABLE.c.key == _key(previous_key), TABLE.c.expires_at > now)).first()
        count, expires_at = (int(row.count), float(row.expires_at)) if row else (0, now + expiry)
        with self._local_lock:
            self._local.setdefault(_key(previous_key), [count, 0, expires_at, time.monotonic()])

    def acquire_sliding_window_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        """Count a hit if the weighted count of both windows stays within ``limit``."""
        if amount > limit:
            return False
        current_key, (previous, previous_ttl, _, _) = self._window(key, expiry, time.time())
        weight = previous * previous_ttl / expiry
        if floor(weight + self.get(current_key)) + amount > limit:
            return False
        if floor(weight + self.incr(current_key, 2 * expiry, amount)) > limit:
            self.decr(current_key, amount)  # another hit won the race
            return False
        return True

    def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        """Return (previous count, its ttl, current count, its ttl)."""
        return self._window(key, expiry, time.time())[1]

    def clear_sliding_window(self, key: str, expiry: int) -> None:
        """Delete both windows' counters."""
        for window_key in self.sliding_window_keys(key, expiry, time.time()):
            self.clear(window_key)


def purge_expired(engine: Engine, *, batch: int = 1000, grace: float = 0.0) -> int:
    """Delete counters expired more than ``grace`` seconds ago, ``batch`` rows per statement; return how many."""
    total = 0
    while True:
        with engine.begin() as conn:
            keys = select(TABLE.c.key).where(TABLE.c.expires_at < time.time() - grace).limit(batch)
            deleted = conn.execute(delete(TABLE).where(TABLE.c.key.in_(keys.scalar_subquery()))).rowcount or 0
        total += deleted
        if deleted < batch:
            return total


class ThreadSafeMemoryStorage(MemoryStorage):
    """The ``limits`` library's in-process storage (``RATE_LIMIT_STORAGE=memory://``, the single-process default)
    with one sweeper thread for its life instead of the library's one-shot 10 ms expiry timer.

    The library restarts that timer from whichever request thread finds it finished: under load, a thread
    started up to a hundred times a second, each start waited for by a request (5 % of the gateway's profile
    samples during the balance reads), and a race besides — two threads that both find it finished both replace
    it, and one starts the other's timer a second time (``RuntimeError: threads can only be started once``, a
    500). Counters need no sweeping to be right (``get`` drops an expired one when it is read): the sweeper only
    frees memory, every ``SWEEP_SECONDS``."""

    STORAGE_SCHEME = ["klients-memory"]  # noqa: RUF012 - the limits library reads it from the class
    SWEEP_SECONDS = 1.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions, **options)  # starts the library's first timer: it runs once
        self._sweeper_pid = 0
        self._sweeper_lock = threading.Lock()
        self._start_sweeper()

    def _start_sweeper(self) -> None:
        with self._sweeper_lock:
            if self._sweeper_pid != os.getpid():  # once per process (a forked worker starts its own)
                self._sweeper_pid = os.getpid()
                threading.Thread(target=_sweep, args=(weakref.ref(self), self.SWEEP_SECONDS), daemon=True,
                                 name="rate-limit-sweeper").start()

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 - the library's private method, name-mangled
        if self._sweeper_pid != os.getpid():
            self._start_sweeper()


def _sweep(storage: weakref.ref[ThreadSafeMemoryStorage], seconds: float) -> None:
    """Drop expired counters every ``seconds`` while the storage lives."""
    while True:
        time.sleep(seconds)
        live = storage()
        if live is None:
            return
        live._MemoryStorage__expire_events()  # type: ignore[attr-defined]
        del live


def limiter_storage(setting: str, *, own_engine: Engine | None = None) -> dict[str, Any]:
    """Return flask-limiter's ``storage_uri`` and ``storage_options`` for a ``RATE_LIMIT_STORAGE`` value."""
    setting = setting.strip()
    if setting == "database":
        if own_engine is None:
            raise ValueError("RATE_LIMIT_STORAGE=database needs the service's own database")
        return {"storage_uri": f"{SCHEME}://", "storage_options": {"engine": own_engine}}
    scheme = setting.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("postgresql", "sqlite"):
        return {"storage_uri": f"{SCHEME}://", "storage_options": {"url": setting, "create_table": True}}
    if scheme == "memory":
        return {"storage_uri": "klients-memory://", "storage_options": {}}
    return {"storage_uri": setting, "storage_options": {}}
