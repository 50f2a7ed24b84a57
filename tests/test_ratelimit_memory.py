"""The single-process rate-limit storage (``RATE_LIMIT_STORAGE=memory://``) under concurrent request threads:
the library restarted its 10 ms expiry timer from request threads (a thread started per hit under load, and a
race that answered a 500); ours sweeps from one thread of its own. Tested: the setting reaches that storage, and
hits start no thread while expired counters are still dropped."""

from __future__ import annotations

import threading
import time

from limits.storage import storage_from_string

from klients_common.ratelimit import ThreadSafeMemoryStorage, limiter_storage


def test_memory_setting_gets_the_thread_safe_storage():
    config = limiter_storage("memory://")
    assert isinstance(storage_from_string(config["storage_uri"], **config["storage_options"]),
                      ThreadSafeMemoryStorage)


def test_memory_storage_counts_without_starting_a_thread_per_hit_and_still_drops_expired_counters(monkeypatch):
    storage = storage_from_string("klients-memory://")
    started: list[str] = []
    start = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda thread: (started.append(thread.name), start(thread))[1])
    for _ in range(5):  # the library's timer lives 10 ms: each of these hits found it finished
        storage.incr("person:p1", 60)
        time.sleep(0.02)
    assert storage.get("person:p1") == 5
    assert started == []
    storage.incr("person:p2", 1)
    deadline = time.monotonic() + 5
    while "person:p2" in storage.storage and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "person:p2" not in storage.storage  # swept without being read again
