"""Evidence files: PDF, PNG or JPEG, at most 10 MB, stored under a random name in the private
evidence store, with their SHA-256.

The first bytes only say which parser to try; the whole file must then pass it. A file that
starts like a PDF or an image but is HTML and script after its header (a polyglot a browser
could be led to run) fails to parse and is refused, as is a real PDF that carries active
content: JavaScript, embedded files, launch actions or XFA forms. Images are decoded in full
and stored re-encoded from their pixels alone, so neither trailing data nor metadata (EXIF with
its GPS position, comments, text chunks) survives. Nothing is stored for a refused file, and no
row is written. Decoding is bounded (pages, objects, pixels) so a hostile file cannot hold a web
worker or its memory for long.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO

from PIL import Image, ImageOps
from pypdf import PasswordType, PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from marketplace.errors import DomainError, ValidationFailed
from marketplace.storage import ObjectStore

log = logging.getLogger(__name__)

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
# A scanned certificate is a page or two; a transcript or a portfolio a few dozen at most.
MAX_PDF_PAGES = 50
MAX_PDF_OBJECTS = 10_000
# Dictionary entries and array items looked at, over all objects (compressed object streams
# can hold more than the file's size suggests).
MAX_PDF_VALUES = 1_000_000
# An A4 page scanned at 600 dpi is 35 million pixels, a 48-megapixel phone photo 48 million; a
# decoded image takes three or four bytes a pixel.
MAX_IMAGE_PIXELS = 50_000_000
JPEG_QUALITY = 90
_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY_BYTES = 1024 * 1024

# The first bytes of each accepted format; the name and the client's content type are ignored.
SIGNATURES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
}

# What a PDF may not hold anywhere (ISO 32000-1/2): script, files inside it, actions that run
# programs or open embedded files, XFA forms (which carry their own script) and rich media.
_UNSAFE_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/EmbeddedFiles": "an embedded file",
    "/EF": "an embedded file",
    "/XFA": "an XFA form",
    "/RichMediaContent": "rich media",
}
_UNSAFE_ACTIONS = {
    "/JavaScript": "JavaScript",
    "/Launch": "a launch action",
    "/GoToE": "an embedded file",
    "/RichMediaExecute": "rich media",
}
_UNSAFE_TYPES = {
    "/EmbeddedFile": "an embedded file",
    "/FileAttachment": "an embedded file",
    "/RichMedia": "rich media",
}
_UNSAFE_VALUES = (("/S", _UNSAFE_ACTIONS), ("/Type", _UNSAFE_TYPES), ("/Subtype", _UNSAFE_TYPES))
# Bytes a PDF may end with after its last %%EOF marker.
_PADDING = b" \t\r\n\x00\x0c"


class EvidenceTooLarge(DomainError):
    status = 413
    code = "payload_too_large"
    message = "Evidence files can be at most 10 MB."


class EvidenceRefused(DomainError):
    """A file that is not what it claims, or not safe to show; the reason is given per field,
    like any other invalid input."""

    status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(reason, details={"fields": {"file": [reason]}})


class EvidenceUnreadable(EvidenceRefused):
    code = "evidence_unreadable"


class EvidenceUnsafe(EvidenceRefused):
    code = "evidence_unsafe"


class EvidenceTooComplex(EvidenceRefused):
    code = "evidence_too_complex"


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
    """Check the whole upload, then put what passed in the store (a PDF as it came, an image
    re-encoded); nothing is stored if it is refused."""
    head = stream.read(16)
    content_type = sniff_content_type(head)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES) as spool:
        _copy_within_limit(head, stream, spool)
        spool.seek(0)
        if content_type == "application/pdf":
            check_pdf(spool.read())
            content: IO[bytes] = spool
        else:
            content = io.BytesIO(reencode_image(spool, content_type))
        size, sha256 = _measure(content)
        stored_name = secrets.token_hex(16)
        store.put(stored_name, content, content_type)
    return StoredFile(stored_name, content_type, size, sha256)


def _copy_within_limit(head: bytes, stream: BinaryIO, out: IO[bytes]) -> None:
    """Copy the upload (its first bytes already read) to `out`, refusing it past 10 MB."""
    size = len(head)
    out.write(head)
    while chunk := stream.read(_CHUNK):
        size += len(chunk)
        if size > MAX_EVIDENCE_BYTES:
            raise EvidenceTooLarge()
        out.write(chunk)


def _measure(content: IO[bytes]) -> tuple[int, str]:
    """The size and SHA-256 of what will be stored; `content` is left at its start."""
    content.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := content.read(_CHUNK):
        size += len(chunk)
        digest.update(chunk)
    content.seek(0)
    return size, digest.hexdigest()


# --- images ------------------------------------------------------------------------------------

# Pillow's format for each accepted type, and the formats it may report on opening one (a
# phone's multi-picture JPEG opens as MPO; only its first picture is kept).
_IMAGE_FORMATS = {"image/png": ("PNG", {"PNG"}), "image/jpeg": ("JPEG", {"JPEG", "MPO"})}
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def reencode_image(upload: IO[bytes], content_type: str) -> bytes:
    """Decode the whole image (Pillow), then encode its pixels again in the same format."""
    save_as, formats = _IMAGE_FORMATS[content_type]
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its own limit and twice it; a bomb is refused either way.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload, formats=[save_as]) as image:
                _check_image(image, formats)
                image.verify()  # PNG chunk checksums; nothing is decoded yet
            upload.seek(0)
            with Image.open(upload, formats=[save_as]) as image:
                _check_image(image, formats)
                image.load()  # every pixel: a truncated or corrupt image fails here
                clean = _pixels_only(image, save_as)
        out = io.BytesIO()
        if save_as == "JPEG":  # 4:4:4, so the small print on a certificate stays sharp
            clean.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0)
        else:
            clean.save(out, "PNG")
    except EvidenceRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise EvidenceTooComplex(_too_many_pixels()) from None
    except Exception as error:  # Pillow raises many kinds on a broken file; all mean "unreadable"
        log.info("evidence image refused as unreadable: %s", type(error).__name__)
        kind = "PNG" if save_as == "PNG" else "JPEG"
        raise EvidenceUnreadable(f"This is not a readable {kind} image.") from None
    return out.getvalue()


def _check_image(image: Image.Image, formats: set[str]) -> None:
    if image.format not in formats:
        raise EvidenceUnreadable("Upload a PDF, PNG or JPEG file.")
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise EvidenceTooComplex(_too_many_pixels())


def _too_many_pixels() -> str:
    return f"This image has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels."


def _pixels_only(image: Image.Image, save_as: str) -> Image.Image:
    """The image turned upright as its EXIF orientation says, in a mode the format stores, with
    no metadata left to write (Pillow falls back on `info` for some of it)."""
    upright = ImageOps.exif_transpose(image)
    if save_as == "JPEG":
        if upright.mode not in {"L", "RGB"}:  # CMYK, YCbCr: as browsers show it
            upright = upright.convert("RGB")
    elif upright.mode not in _PNG_MODES or "transparency" in upright.info:
        upright = upright.convert("RGBA")  # a palette's or a colour's transparency, kept
    upright.info = {}
    return upright


# --- PDF ---------------------------------------------------------------------------------------


def check_pdf(data: bytes) -> None:
    """Refuse a PDF that does not parse, is too big to inspect, or holds active content."""
    end = data.rfind(b"%%EOF")
    if end == -1:
        raise EvidenceUnreadable("This is not a readable PDF: it has no end marker.")
    if data[end + len(b"%%EOF") :].strip(_PADDING):
        # Whatever follows the document is never shown, so it is only there to be misread.
        raise EvidenceUnsafe("This PDF has data after its end; save or print it to PDF again.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        _unlock(reader)
        _check_size(reader)
        for value in _pdf_objects(reader):
            _check_object(value)
    except EvidenceRefused:
        raise
    except Exception as error:  # pypdf raises many kinds on hostile input; all mean "unreadable"
        log.info("evidence PDF refused as unreadable: %s", type(error).__name__)
        raise EvidenceUnreadable("This is not a readable PDF.") from None


def _unlock(reader: PdfReader) -> None:
    """A PDF protected only against editing opens with an empty password; any other cannot be
    inspected (or viewed by an admin)."""
    if reader.is_encrypted and reader.decrypt("") is PasswordType.NOT_DECRYPTED:
        raise EvidenceUnreadable("This PDF is password-protected; upload it without a password.")


def _check_size(reader: PdfReader) -> None:
    objects = sum(len(entries) for entries in reader.xref.values()) + len(reader.xref_objStm)
    if objects > MAX_PDF_OBJECTS:
        raise EvidenceTooComplex(f"This PDF has more than {MAX_PDF_OBJECTS} objects.")
    pages = len(reader.pages)
    if pages == 0:
        raise EvidenceUnreadable("This PDF has no pages.")
    if pages > MAX_PDF_PAGES:
        raise EvidenceTooComplex(f"This PDF has more than {MAX_PDF_PAGES} pages.")


def _pdf_objects(reader: PdfReader) -> Iterator[Any]:
    """The trailer and every object the cross-reference tables list (in use or not, in every
    revision, inside object streams too), whether or not the page tree reaches it."""
    yield reader.trailer
    numbers = {
        (number, generation) for generation, entries in reader.xref.items() for number in entries
    }
    numbers |= {(number, 0) for number in reader.xref_objStm}
    for number, generation in sorted(numbers):
        yield reader.get_object(IndirectObject(number, generation, reader))


def _check_object(root: Any) -> None:
    """Look through one object's direct values (references are checked as objects of their
    own, so cycles cannot loop)."""
    pending = [root]
    seen = 0
    while pending:
        value = pending.pop()
        seen += 1
        if seen > MAX_PDF_VALUES:
            raise EvidenceTooComplex("This PDF is too complex to check.")
        if isinstance(value, DictionaryObject):  # a stream's dictionary too
            _check_dictionary(value)
            pending.extend(value.values())
        elif isinstance(value, ArrayObject):
            pending.extend(value)


def _check_dictionary(dictionary: DictionaryObject) -> None:
    for key in dictionary:
        if key in _UNSAFE_KEYS:
            _refuse_active(_UNSAFE_KEYS[key])
    for key, kinds in _UNSAFE_VALUES:
        value = dictionary.get(key)
        if isinstance(value, IndirectObject):
            value = value.get_object()
        if isinstance(value, NameObject) and value in kinds:
            _refuse_active(kinds[value])


def _refuse_active(what: str) -> None:
    raise EvidenceUnsafe(
        f"This PDF contains {what}, which evidence may not; print it to PDF again without it."
    )
