"""authlib's OAuth 2.0 errors made safe for input an attacker chooses.

authlib writes request values into error descriptions (``Redirect URI {uri} is not supported``, ``The
response type '{value}' is not supported``) and then refuses, with a ``ValueError`` (a 500), any description
holding a character RFC 6749 forbids there (``"``, ``\\``, anything outside printable ASCII). Here every
description is cleaned instead: a forbidden character becomes ``?`` and the text is cut to a bounded length,
so a bad request always gets its 4xx error, in every endpoint that uses authlib.
"""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import base

MAX_DESCRIPTION = 200


def clean_description(text: str) -> str:
    """Return ``text`` with only the characters RFC 6749 allows in ``error_description`` (%x20-21 /
    %x23-5B / %x5D-7E), others replaced by ``?``, at most ``MAX_DESCRIPTION`` characters."""
    cleaned = "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)
    return cleaned if len(cleaned) <= MAX_DESCRIPTION else cleaned[:MAX_DESCRIPTION - 3] + "..."


_original_init = base.OAuth2Error.__init__


def _init(self: Any, description: str | None = None, *args: Any, **kwargs: Any) -> None:
    _original_init(self, clean_description(description) if isinstance(description, str) else description,
                   *args, **kwargs)


if getattr(base.OAuth2Error.__init__, "__name__", "") != "_init":
    base.OAuth2Error.__init__ = _init
