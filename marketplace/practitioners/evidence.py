"""Evidence files: PDF, PNG or JPEG by their content (magic bytes), at most 10 MB, stored under a
random name outside any served folder, with their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from marketplace.errors import DomainError, ValidationFailed

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024

# The first bytes of each accepted format; the name and the client's content type are ignored.
SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}


class EvidenceTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "Evidence files can be at most 10 MB."


@dataclass(frozen=True)
class StoredFile:
    stored_name: str
    content_type: str
    size_bytes: int
    sha256: str


def sniff_content_type(head: bytes) -> str:
    for signature, content_type in SIGNATURES.items():
        if head.startswith(signature):
            return content_type
    raise ValidationFailed.for_field("file", "Upload a PDF, PNG or JPEG file.")


def store_evidence(stream: BinaryIO, folder: Path) -> StoredFile:
    """Check and write the upload; nothing is left behind if it is refused."""
    head = stream.read(16)
    content_type = sniff_content_type(head)
    folder.mkdir(parents=True, exist_ok=True)
    stored_name = secrets.token_hex(16)
    target = folder / stored_name
    digest = hashlib.sha256(head)
    size = len(head)
    try:
        with target.open("xb") as out:
            out.write(head)
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > MAX_EVIDENCE_BYTES:
                    raise EvidenceTooLarge()
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return StoredFile(stored_name, content_type, size, digest.hexdigest())
