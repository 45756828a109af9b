"""Evidence files over HTTP: streamed from the evidence store, sandboxed, never sniffed (the
practitioner's own download and the back office's preview share this)."""

from __future__ import annotations

from flask import Response, send_file

from marketplace.practitioners.models import Evidence
from marketplace.storage import evidence_store


def evidence_policy(frame_ancestors: str = "'none'") -> str:
    """The Content-Security-Policy of every evidence file. `sandbox` (with no allowances) gives
    the file an opaque origin with scripts, forms, plugins' scripting and popups off, so even a
    file opened directly (not in the back office's sandboxed frame) runs nothing on this site."""
    return (
        "sandbox; default-src 'none'; img-src 'self'; base-uri 'none'; form-action 'none'; "
        f"frame-ancestors {frame_ancestors}"
    )


def send_evidence(
    evidence: Evidence, *, as_attachment: bool = True, framed_by_self: bool = False
) -> Response:
    """The file as a download, or inline (the back office previews images and PDFs), streamed
    from the evidence store, sandboxed and never sniffed as anything but its checked type."""
    extension = {"application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpg"}
    response = send_file(
        evidence_store().open(evidence.stored_name),
        mimetype=evidence.content_type,
        as_attachment=as_attachment,
        download_name=f"evidence-{evidence.id}.{extension[evidence.content_type]}",
        etag=evidence.sha256,
        max_age=0,
    )
    if response.status_code == 200:  # a stream has no size of its own; the row knows it
        response.content_length = evidence.size_bytes
    response.headers["Content-Security-Policy"] = evidence_policy(
        "'self'" if framed_by_self else "'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "SAMEORIGIN" if framed_by_self else "DENY"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
