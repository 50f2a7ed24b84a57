"""Passwords of e-mail logins: argon2id hashes, and the rules a new password must meet (and the form's
messages when it does not)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from argon2.exceptions import InvalidHashError, VerificationError
from flask import request

from .. import pages
from ..hashing import hasher

MIN_LENGTH = 12
MAX_LENGTH = 128


@cache
def _common() -> frozenset[str]:
    text = resources.files("klients_identity").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def problems(password: str, *, email: str) -> list[str]:
    """Return the codes of the rules ``password`` breaks (empty: acceptable)."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append("too_short")
    if len(password) > MAX_LENGTH:
        found.append("too_long")
    lowered = password.lower()
    if lowered in _common() or len(set(lowered)) < 4:
        found.append("too_common")
    if email and email.split("@")[0].lower() in lowered:
        found.append("contains_email")
    return found


def hash_password(password: str) -> str:
    """Return the argon2id hash to store."""
    return hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """Return whether ``password`` matches; with no stored hash, spend the same time and say no."""
    try:
        return hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def new_password_errors(email: str) -> list[str]:
    """Check the form's ``password`` and ``password2`` for ``email``'s account; return the messages to show
    (none when the password is good)."""
    password = request.form.get("password", "")
    found = problems(password, email=email)
    if password != request.form.get("password2", ""):
        found.append("mismatch")
    texts = pages.TEXT[pages.current_lang()]
    return [texts[f"pw_{code}"] for code in found]


_DUMMY = hasher.hash("not-a-real-password-just-for-timing")
