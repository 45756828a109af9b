"""Real, minimal evidence files for tests: the upload checks parse the whole file, so a header
followed by anything no longer passes for a PDF."""

from __future__ import annotations

import io

from pypdf import PdfWriter
from pypdf.generic import StreamObject


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
        content = StreamObject()
        content.set_data(b"%" + b"0" * padding + b"\n")
        writer.pages[0].replace_contents(content)
        data = written(writer)
        if len(data) == size:
            return data
        padding += size - len(data)
    raise AssertionError(f"could not make a PDF of {size} bytes")
