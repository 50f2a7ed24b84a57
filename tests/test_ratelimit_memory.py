"""The single-process rate-limit storage (``RATE_LIMIT_STORAGE=memory://``) under concurrent request threads:
no request may fail because the storage's expiry timer was restarted by two threads at once (it was a 500
under the benchmark's load). No running system needed. The second test is a guard: the race needs a thread
switch between two lines, and it does not show reliably on the library's own storage here either."""

from __future__ import annotations

import sys
import threading
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter

from klients_common.ratelimit import ThreadSafeMemoryStorage, limiter_storage


def test_memory_setting_gets_the_thread_safe_storage():
    config = limiter_storage("memory://")
    assert isinstance(storage_from_string(config["storage_uri"], **config["storage_options"]),
                      ThreadSafeMemoryStorage)


def test_concurrent_hits_never_fail_and_still_count():
    storage = storage_from_string(limiter_storage("memory://")["storage_uri"])
    limiter = SlidingWindowCounterRateLimiter(storage)
    limit = parse("1000000/minute")
    errors: list[BaseException] = []
    start = threading.Barrier(16)

    def hammer(worker: int) -> None:
        start.wait()
        for i in range(400):
            try:
                limiter.hit(limit, f"w{worker}", str(i % 7))
                if i % 50 == 0:
                    time.sleep(0.012)  # let the one-shot expiry timer finish, so the next hits restart it
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(16)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: the race needs a switch at the wrong line
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert sum(limiter.get_window_stats(limit, f"w{w}", str(k)).remaining < 1000000
               for w in range(16) for k in range(7)) == 16 * 7
