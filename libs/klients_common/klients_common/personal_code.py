"""Latvian personal codes (personas kods), as docs/eid.md, "Personal codes", describes them.

Old format ``DDMMYY-CNNNN``: the first six digits are the birth date, ``C`` the century (0: 1800s,
1: 1900s, 2: 2000s), and the last digit a checksum: ``(1101 − Σ dᵢ·wᵢ) mod 11`` over the first ten digits
with weights 1, 6, 3, 7, 9, 10, 5, 8, 4, 2 (a result of 10 makes the code invalid). New format (since
1 July 2017): ``3``, then 2–9, then nine random digits, no birth date; only its shape is checked (the
documents disagree on a check digit, so none is enforced).
Codes are stored and compared in the hyphenated form ``XXXXXX-XXXXX``.
"""

from __future__ import annotations

import re
from datetime import date

WEIGHTS = (1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
SHAPE = re.compile(r"^(?:PNOLV-)?(\d{6})-?(\d{5})$")


def normalise_personal_code(raw: str) -> str:
    """Return the code as ``XXXXXX-XXXXX``, or raise ValueError saying what is wrong."""
    match = SHAPE.match(raw.strip().upper())
    if not match:
        raise ValueError("a personal code has 11 digits, e.g. 010180-15097")
    digits = match.group(1) + match.group(2)
    if digits[0] == "3" and digits[1] in "23456789":
        return f"{digits[:6]}-{digits[6:]}"
    if digits[6] not in "012":
        raise ValueError("not a valid personal code (century digit)")
    year = {"0": 1800, "1": 1900, "2": 2000}[digits[6]] + int(digits[4:6])
    try:
        date(year, int(digits[2:4]), int(digits[0:2]))
    except ValueError as exc:
        raise ValueError("not a valid personal code (birth date)") from exc
    check = (1101 - sum(int(d) * w for d, w in zip(digits[:10], WEIGHTS, strict=True))) % 11
    if check == 10 or check != int(digits[10]):
        raise ValueError("not a valid personal code (check digit)")
    return f"{digits[:6]}-{digits[6:]}"
