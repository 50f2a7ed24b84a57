"""Comparing secrets (CSRF tokens, states, signatures) in constant time, for any text a client sends.

``hmac.compare_digest`` raises TypeError on ``str`` with non-ASCII characters; a fuzzer found that as a
500. Compare the UTF-8 bytes instead.
"""

from __future__ import annotations

import hmac


def equal(expected: str | bytes, given: str | bytes | None) -> bool:
    """Return whether ``given`` equals ``expected`` (time independent of where they differ)."""
    if given is None:
        return False
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode("utf-8", "replace") if isinstance(given, str) else given
    return hmac.compare_digest(a, b)
