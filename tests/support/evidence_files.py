"""Real, minimal evidence files for tests: the upload checks parse the whole file, so a header
followed by anything no longer passes for a PDF or an image. And how a served one must look."""

from __future__ import annotations

import io

from PIL import ExifTags, Image
from pypdf import PdfWriter
from pypdf.generic import ContentStream
from werkzeug.test import TestResponse


def pdf_writer(pages: int = 1) -> PdfWriter:
    """A writer holding `pages` blank A4 pages, to add to before `written`."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    return writer


def written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pdf_file(pages: int = 1) -> bytes:
    """A valid PDF of blank pages (a few hundred bytes for one)."""
    return written(pdf_writer(pages))


def pdf_of_size(size: int) -> bytes:
    """A valid one-page PDF of exactly `size` bytes: its page's content stream is a comment
    padded to fit (a large scan, as far as the checks can tell)."""
    padding = 0
    for _ in range(5):
        writer = pdf_writer()
        content = ContentStream(None, writer)
        content.set_data(b"%" + b"0" * padding + b"\n")
        writer.pages[0].replace_contents(content)
        data = written(writer)
        if len(data) == size:
            return data
        padding += size - len(data)
    raise AssertionError(f"could not make a PDF of {size} bytes")


def image_file(
    kind: str = "PNG", width: int = 240, height: int = 120, exif: Image.Exif | None = None
) -> bytes:
    """A valid PNG or JPEG of a pale certificate-coloured block, with `exif` if given."""
    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (235, 228, 200))
    image.save(out, kind, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def png_file(width: int = 240, height: int = 120) -> bytes:
    return image_file("PNG", width, height)


def jpeg_file(width: int = 240, height: int = 120) -> bytes:
    return image_file("JPEG", width, height)


def gps_exif(latitude: float = 51.5014, longitude: float = -0.1419) -> Image.Exif:
    """EXIF saying where a photo was taken (as a phone writes it), and by which camera."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneCo"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = _degrees(latitude)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if longitude >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _degrees(abs(longitude))
    return exif


def _degrees(value: float) -> tuple[float, float, float]:
    minutes = (value % 1) * 60
    return (float(int(value)), float(int(minutes)), round((minutes % 1) * 60, 2))


def assert_sandboxed(response: TestResponse, frame_ancestors: str) -> None:
    """An evidence file runs nothing on this site, even opened directly: a CSP sandbox (with no
    allowances), nothing else loads, and the browser keeps the checked content type."""
    policy = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert policy[0] == "sandbox"
    assert "default-src 'none'" in policy
    assert f"frame-ancestors {frame_ancestors}" in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
