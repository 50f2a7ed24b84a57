"""The single-process rate-limit storage (``RATE_LIMIT_STORAGE=memory://``) under concurrent request threads:
no request may fail because the storage's expiry timer was restarted by two threads at once (it was a 500
under the benchmark's load). The race needs a thread switch between two lines of the library, which no test
here provokes on demand; what is tested is that the setting reaches the storage that takes the lock."""

from __future__ import annotations

from limits.storage import storage_from_string

from klients_common.ratelimit import ThreadSafeMemoryStorage, limiter_storage


def test_memory_setting_gets_the_thread_safe_storage():
    config = limiter_storage("memory://")
    assert isinstance(storage_from_string(config["storage_uri"], **config["storage_options"]),
                      ThreadSafeMemoryStorage)
