"""Comparing secrets (CSRF tokens, states, signatures) in constant time, for any text a client sends.

``hmac.compare_digest`` raises TypeError on ``str`` with non-ASCII characters; a fuzzer found that as a
500. Compare the UTF-8 bytes instead.

Equal time for branches that must not be told apart (a form answering the same whether an address has an
account or not): ``at_least`` / ``taking_at_least`` pad a block to a fixed minimum duration.
"""

from __future__ import annotations

import functools
import hmac
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def equal(expected: str | bytes, given: str | bytes | None) -> bool:
    """Return whether ``given`` equals ``expected`` (time independent of where they differ)."""
    if given is None:
        return False
    a = expected.encode() if isinstance(expected, str) else expected
    b = given.encode("utf-8", "replace") if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


@contextmanager
def at_least(seconds: float) -> Iterator[None]:
    """Let the block take at least ``seconds`` (sleeping out the rest), so that its duration does not tell
    which branch it took: e.g. whether an address has an account. Choose ``seconds`` above the slowest
    branch's usual time."""
    started = time.monotonic()
    try:
        yield
    finally:
        left = seconds - (time.monotonic() - started)
        if left > 0:
            time.sleep(left)


def taking_at_least(seconds: Callable[[], float]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a function to take at least ``seconds()`` (read at each call), as ``at_least``."""
    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with at_least(seconds()):
                return function(*args, **kwargs)
        return wrapper
    return decorate
