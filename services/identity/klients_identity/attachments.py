"""Application attachments (signed applications, powers of attorney): PDF, JPEG or PNG up to 10 MB, the
type decided by the content, never by the name or the browser's claim. Files live outside anything
served, named by their SHA-256, readable by the service account only, and are served to operators only
(as downloads, ``nosniff``, sandboxed)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024
SIGNATURES = (  # (magic bytes at the start, content type)
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


class AttachmentRefused(ValueError):
    """The file is empty, too large, or not a PDF, JPEG or PNG (``code`` says which)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Stored:
    """A stored attachment."""

    sha256: str
    content_type: str
    size: int


def sniff(data: bytes) -> str:
    """Return the content type the bytes really are; raise AttachmentRefused if not an accepted one."""
    for magic, content_type in SIGNATURES:
        if data.startswith(magic):
            return content_type
    raise AttachmentRefused("wrong_type")


def store(folder: Path, data: bytes) -> Stored:
    """Check and store an attachment; return what was stored."""
    if not data:
        raise AttachmentRefused("empty")
    if len(data) > MAX_BYTES:
        raise AttachmentRefused("too_large")
    content_type = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    path = path_of(folder, digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_suffix(".part")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    return Stored(sha256=digest, content_type=content_type, size=len(data))


def path_of(folder: Path, sha256: str) -> Path:
    """Return where the attachment with this hash lives."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256")
    return folder / sha256[:2] / sha256
