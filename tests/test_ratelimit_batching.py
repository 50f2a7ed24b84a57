"""The SQL rate-limit storage pre-counts large limits in the process and writes them in batches
(``klients_common.ratelimit``): a limit still stops the hits past it across processes within the stated
tolerance, small limits stay exact, and a batch reaches the shared counter."""

from __future__ import annotations

from pathlib import Path

from limits import parse
from limits.strategies import FixedWindowRateLimiter

from klients_common.ratelimit import TOLERANCE, SqlStorage


def _limiters(tmp_path: Path, processes: int) -> list[FixedWindowRateLimiter]:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    return [FixedWindowRateLimiter(SqlStorage(url=url, create_table=True)) for _ in range(processes)]


def test_a_small_limit_is_exact_across_processes(tmp_path: Path) -> None:
    limiters, item = _limiters(tmp_path, 2), parse("30/minute")
    answers = [limiters[i % 2].hit(item, "token", "10.0.0.1") for i in range(40)]
    assert answers == [True] * 30 + [False] * 10


def test_a_large_limit_stops_within_its_tolerance_across_processes(tmp_path: Path) -> None:
    processes, limit = 3, 2000
    limiters, item = _limiters(tmp_path, processes), parse(f"{limit}/minute")
    batch = int(limit * TOLERANCE)
    admitted = sum(limiters[i % processes].hit(item, "token", "10.0.0.2") for i in range(3 * limit))
    assert limit <= admitted <= limit + processes * (batch - 1)
    assert not any(limiter.hit(item, "token", "10.0.0.2") for limiter in limiters)  # and it stays stopped
    fresh = _limiters(tmp_path, 1)[0]  # a process that has counted nothing itself sees the shared count
    assert fresh.storage.incr(item.key_for("token", "10.0.0.2"), 60, batch) > limit


def test_one_process_alone_stops_at_the_limit_exactly(tmp_path: Path) -> None:
    limiter, item = _limiters(tmp_path, 1)[0], parse("2000/minute")
    answers = [limiter.hit(item, "token", "10.0.0.3") for _ in range(2001)]
    assert answers.count(True) == 2000 and answers[-1] is False
