"""The SQL rate-limit storage pre-counts large limits in the process and writes them in batches
(``klients_common.ratelimit``), for the fixed-window strategy (identity) and the sliding-window counter (the
gateway): a limit still stops the hits past it across processes within the stated tolerance, small limits stay
exact, and a batch reaches the shared counter. Limits are per hour, so that no run crosses a window's end."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from limits import parse
from limits.strategies import FixedWindowRateLimiter, RateLimiter, SlidingWindowCounterRateLimiter

from klients_common.ratelimit import TOLERANCE, SqlStorage

STRATEGIES = pytest.mark.parametrize("strategy", [FixedWindowRateLimiter, SlidingWindowCounterRateLimiter],
                                     ids=["fixed-window", "sliding-window-counter"])


def _limiters(tmp_path: Path, processes: int, strategy: type[RateLimiter] = FixedWindowRateLimiter,
              ) -> list[RateLimiter]:
    url = f"sqlite:///{tmp_path / 'limits.db'}"
    return [strategy(SqlStorage(url=url, create_table=True)) for _ in range(processes)]


@STRATEGIES
def test_a_small_limit_is_exact_across_processes(tmp_path: Path, strategy: type[RateLimiter]) -> None:
    limiters, item = _limiters(tmp_path, 2, strategy), parse("30/hour")
    answers = [limiters[i % 2].hit(item, "token", "10.0.0.1") for i in range(40)]
    assert answers == [True] * 30 + [False] * 10


@STRATEGIES
def test_a_large_limit_stops_within_its_tolerance_across_processes(tmp_path: Path,
                                                                     strategy: type[RateLimiter]) -> None:
    processes, limit = 3, 2000
    limiters, item = _limiters(tmp_path, processes, strategy), parse(f"{limit}/hour")
    batch = int(limit * TOLERANCE)
    admitted = sum(limiters[i % processes].hit(item, "token", "10.0.0.2") for i in range(3 * limit))
    assert limit <= admitted <= limit + processes * (batch - 1)
    assert not any(limiter.hit(item, "token", "10.0.0.2") for limiter in limiters)  # and it stays stopped
    fresh = _limiters(tmp_path, 1, strategy)[0].storage  # a process that has counted nothing itself
    key = item.key_for("token", "10.0.0.2")
    if strategy is SlidingWindowCounterRateLimiter:  # the current window's counter
        key = fresh.sliding_window_keys(key, item.get_expiry(), time.time())[1]
    assert fresh.incr(key, item.get_expiry(), batch) > limit  # sees the shared count


@STRATEGIES
def test_one_process_alone_stops_at_the_limit_exactly(tmp_path: Path, strategy: type[RateLimiter]) -> None:
    limiter, item = _limiters(tmp_path, 1, strategy)[0], parse("2000/hour")
    answers = [limiter.hit(item, "token", "10.0.0.3") for _ in range(2001)]
    assert answers.count(True) == 2000 and answers[-1] is False
