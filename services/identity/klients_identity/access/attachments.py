"""Application attachments (signed applications, powers of attorney): PDF, JPEG or PNG up to 10 MB, the
type decided by the content, never by the name or the browser's claim. They are kept in identity's
database (every instance serves them, backups include them), by SHA-256, and served only to operators
(as downloads, ``nosniff``, sandboxed)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..models import Attachment

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


def store(session: Session, data: bytes) -> Stored:
    """Check an attachment and add it to the session's transaction (once per content)."""
    if not data:
        raise AttachmentRefused("empty")
    if len(data) > MAX_BYTES:
        raise AttachmentRefused("too_large")
    content_type = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    if session.get(Attachment, digest) is None:
        session.add(Attachment(sha256=digest, content_type=content_type, size=len(data), content=data))
    return Stored(sha256=digest, content_type=content_type, size=len(data))


def load(session: Session, sha256: str) -> bytes | None:
    """Return an attachment's bytes."""
    row = session.get(Attachment, sha256)
    return row.content if row is not None else None
