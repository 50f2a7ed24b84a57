"""What every connector returns: a verified identity, or a failure a person can understand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VerifiedIdentity:
    """A person proven by a strong method."""

    personal_code: str  # normalised "XXXXXX-XXXXX" (klients_common.personal_code)
    given_name: str
    family_name: str
    method: str  # "smart_id" | "eparaksts" | "bank"
    acr: str  # one of the eIDAS levels (klients_common.assurance)
    amr: tuple[str, ...]  # e.g. ("smartid",), ("eparaksts_mobile",), ("bank:swedbank",)
    detail: dict[str, Any] = field(default_factory=dict)  # provider-specific facts worth auditing


class LoginFailed(Exception):
    """A login that ended without an identity. ``code`` is stable (for tests, logs and page choice);
    the messages are what the person reads, in Latvian and English."""

    def __init__(self, code: str, message_lv: str, message_en: str, *, retry: bool = True) -> None:
        super().__init__(f"{code}: {message_en}")
        self.code = code
        self.message_lv = message_lv
        self.message_en = message_en
        self.retry = retry  # whether trying again (same method) makes sense

    def message(self, lang: str) -> str:
        """Return the message in ``lang`` (``lv`` or ``en``)."""
        return self.message_lv if lang == "lv" else self.message_en
