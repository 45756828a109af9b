"""Evidence files: PDF, PNG or JPEG by their content (magic bytes), at most 10 MB, stored under a
random name in the private evidence store, with their SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import tempfile
from dataclasses import dataclass
from typing import IO, BinaryIO

from marketplace.errors import DomainError, ValidationFailed
from marketplace.storage import ObjectStore

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY_BYTES = 1024 * 1024

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


def store_evidence(stream: BinaryIO, store: ObjectStore) -> StoredFile:
    """Check the upload, then put it in the store whole; nothing is stored if it is refused."""
    head = stream.read(16)
    content_type = sniff_content_type(head)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES) as spool:
        size, sha256 = _copy_within_limit(head, stream, spool)
        spool.seek(0)
        stored_name = secrets.token_hex(16)
        store.put(stored_name, spool, content_type)
    return StoredFile(stored_name, content_type, size, sha256)


def _copy_within_limit(head: bytes, stream: BinaryIO, out: IO[bytes]) -> tuple[int, str]:
    """Copy the upload (its first bytes already read) to `out`: its size and SHA-256."""
    digest = hashlib.sha256(head)
    size = len(head)
    out.write(head)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > MAX_EVIDENCE_BYTES:
            raise EvidenceTooLarge()
        digest.update(chunk)
        out.write(chunk)
    return size, digest.hexdigest()
