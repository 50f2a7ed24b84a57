"""The embedded default (SQLite, as ``make run`` has it) under concurrent writers: every service's engine comes
from ``klients_common.db.make_engine``, which sets WAL, a 30-second busy wait and commits without an fsync of
the log, so short write transactions from many threads queue instead of failing with "database is locked"
(the bench's SQLite run measures the same with 16 refresh chains and 32 API readers, docs/performance.md)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import text

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
