"""The embedded default (SQLite, as ``make run`` has it) under concurrent writers: every service's engine comes
from ``klients_common.db.make_engine``, which sets WAL, a 30-second busy wait and commits without an fsync of
the log, so short write transactions from many threads queue instead of failing with "database is locked"
(the bench's SQLite run measures the same with 16 refresh chains and 32 API readers, docs/performance.md)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from klients_common.db import make_engine


def test_sqlite_engine_waits_for_the_writer_and_commits_without_fsync(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'service.db'}", pool_size=16)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counters VALUES ('hits', 0)"))
        conn.execute(text("CREATE TABLE log (id INTEGER PRIMARY KEY, at REAL)"))
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL: no fsync per commit
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(40):  # a refresh grant's shape: read, update a row, insert one, commit
                with engine.begin() as conn:
                    conn.execute(text("SELECT n FROM counters WHERE name = 'hits'")).scalar()
                    conn.execute(text("UPDATE counters SET n = n + 1 WHERE name = 'hits'"))
                    conn.execute(text("INSERT INTO log (at) VALUES (:at)"), {"at": time.time()})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counters")).scalar() == 16 * 40
        assert conn.execute(text("SELECT count(*) FROM log")).scalar() == 16 * 40
    engine.dispose()


def test_sqlite_writers_queue_and_the_next_one_starts_as_soon_as_the_last_commits(tmp_path: Path) -> None:
    """A writer waiting for another does not sleep in SQLite's busy handler (1 … 100 ms steps) but queues: it
    writes within milliseconds of the other's commit; another process's engine on the same file (here a second
    engine with its own connections) queues the same way, and a failed writer lets the next one in."""
    url = f"sqlite:///{tmp_path / 'service.db'}"
    engine, other = make_engine(url), make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE counters (name TEXT PRIMARY KEY, n INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counters VALUES ('hits', 0)"))
    for second in (engine, other):
        assert 0 <= _gap_after_commit(engine, second) < 0.03
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE counters SET n = n + 1"))
            conn.execute(text("INSERT INTO counters VALUES ('hits', 0)"))  # fails: the transaction rolls back
    except IntegrityError:
        pass
    with other.begin() as conn:  # the failed writer let go of the queue
        conn.execute(text("UPDATE counters SET n = n + 1"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM counters")).scalar() == 5
    engine.dispose()
    other.dispose()


def _gap_after_commit(first: Engine, second: Engine) -> float:
    """Seconds from the commit of a write transaction held 0.25 s on ``first`` to the write of one on ``second``
    that started waiting while it was held."""
    committed, written = [], []
    holding = threading.Event()

    def hold() -> None:
        with first.begin() as conn:
            conn.execute(text("UPDATE counters SET n = n + 1"))
            holding.set()
            time.sleep(0.25)  # the busy handler polls at 228 ms, then 328 ms: about 80 ms after this commit
        committed.append(time.monotonic())

    def wait_and_write() -> None:
        holding.wait(5)
        with second.begin() as conn:
            conn.execute(text("UPDATE counters SET n = n + 1"))
            written.append(time.monotonic())

    threads = [threading.Thread(target=hold), threading.Thread(target=wait_and_write)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return written[0] - committed[0]
