from __future__ import annotations

import hashlib
import io
import itertools
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image
from pypdf import PdfReader
from pypdf.actions import JavaScript
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    NameObject,
    StreamObject,
    TextStringObject,
)
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from marketplace.audit.models import AuditEntry
from marketplace.practitioners.evidence import MAX_EVIDENCE_BYTES, MAX_IMAGE_PIXELS, MAX_PDF_PAGES
from marketplace.practitioners.models import Evidence
from tests.support.accounts import logged_in
from tests.support.evidence_files import (
    assert_sandboxed,
    gps_exif,
    image_file,
    jpeg_file,
    pdf_file,
    pdf_of_size,
    pdf_writer,
    png_file,
    written,
)
from tests.support.practitioner_api import NMT, put_profile, submit
from tests.support.storage import Backend

PDF = pdf_file()
PNG = png_file()
JPEG = jpeg_file()
EXECUTABLE = b"\x7fELF\x02\x01\x01" + b"\x00" * 64


@pytest.fixture
def physio(client: FlaskClient) -> FlaskClient:
    logged_in(client, "practitioner")
    assert put_profile(client).status_code == 200
    return client


@pytest.fixture
def nmt_therapist(client: FlaskClient) -> FlaskClient:
    logged_in(client, "practitioner")
    assert put_profile(client, profession="neuromuscular_therapist").status_code == 200
    return client


class TestHcpc:
    @pytest.mark.parametrize(
        ("written", "stored"), [("PH123456", "PH123456"), ("ph 12345", "PH12345"), ("PH1", "PH1")]
    )
    def test_good_numbers(self, physio: FlaskClient, written: str, stored: str) -> None:
        response = submit(physio, kind="hcpc", number=written)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["number"] == stored
        assert response.get_json()["status"] == "pending"

    @pytest.mark.parametrize("number", ["PH1234567", "PH", "XX123456", "123456", "PH12A456"])
    def test_bad_numbers(self, physio: FlaskClient, number: str) -> None:
        response = submit(physio, kind="hcpc", number=number)
        assert response.status_code == 422
        assert "number" in response.get_json()["error"]["details"]["fields"]

    def test_a_physiotherapist_needs_a_ph_number(self, physio: FlaskClient) -> None:
        response = submit(physio, kind="hcpc", number="OT123456")
        assert response.status_code == 422
        assert "PH" in response.get_json()["error"]["details"]["fields"]["number"][0]

    def test_other_professions_codes_are_valid_hcpc_numbers(
        self, nmt_therapist: FlaskClient
    ) -> None:
        assert submit(nmt_therapist, kind="hcpc", number="OT123456").status_code == 201
        assert submit(nmt_therapist, kind="hcpc", number="ODP12").status_code == 201

    def test_number_is_unique_across_practitioners(self, physio: FlaskClient, app: Flask) -> None:
        assert submit(physio, kind="hcpc", number="PH555555").status_code == 201
        other = app.test_client()
        logged_in(other, "practitioner")
        put_profile(other)
        response = submit(other, kind="hcpc", number="ph555555")
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "credential_number_in_use"

    def test_needs_a_profile_first(self, client: FlaskClient) -> None:
        logged_in(client, "practitioner")
        response = submit(client, kind="hcpc", number="PH123456")
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "profile_required"


class TestNmtCertificate:
    def test_450_hours_is_enough(self, nmt_therapist: FlaskClient) -> None:
        response = submit(nmt_therapist, **NMT)
        assert response.status_code == 201
        assert response.get_json()["training_hours"] == 450

    def test_449_hours_is_refused_clearly(self, nmt_therapist: FlaskClient) -> None:
        response = submit(nmt_therapist, **{**NMT, "training_hours": 449})
        assert response.status_code == 422
        message = response.get_json()["error"]["details"]["fields"]["training_hours"][0]
        assert "450" in message
        assert "449" in message

    def test_certificate_details_are_required(self, nmt_therapist: FlaskClient) -> None:
        response = submit(nmt_therapist, kind="nmt_certificate", number="N-1")
        assert response.status_code == 422
        fields = response.get_json()["error"]["details"]["fields"]
        assert set(fields) == {"issuer", "programme", "training_hours", "issued_on"}

    def test_expiry_must_follow_issue(self, nmt_therapist: FlaskClient) -> None:
        response = submit(nmt_therapist, **{**NMT, "expires_on": "2024-01-01"})
        assert response.status_code == 422


class TestEvidence:
    def upload(
        self, client: FlaskClient, credential_id: str, content: bytes, name: str, content_type: str
    ) -> Any:
        return client.post(
            f"/api/v1/practitioners/me/credentials/{credential_id}/evidence",
            data={"file": (io.BytesIO(content), name, content_type)},
            content_type="multipart/form-data",
        )

    def credential(self, client: FlaskClient) -> str:
        return str(submit(client, kind="hcpc", number="PH100200").get_json()["id"])

    @pytest.mark.parametrize(
        ("content", "kind"), [(PDF, "application/pdf"), (PNG, "image/png"), (JPEG, "image/jpeg")]
    )
    def test_accepted_formats_stored_under_a_random_name_with_sha256(
        self,
        physio: FlaskClient,
        app: Flask,
        db: Session,
        evidence_backend: Backend,
        content: bytes,
        kind: str,
    ) -> None:
        response = self.upload(
            physio, self.credential(physio), content, "scan", "application/x-anything"
        )
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["content_type"] == kind
        stored = db.scalars(select(Evidence)).one()
        assert evidence_backend.names() == {stored.stored_name}
        kept = evidence_backend.read(stored.stored_name)
        assert response.get_json()["sha256"] == hashlib.sha256(kept).hexdigest()
        assert response.get_json()["size_bytes"] == len(kept)
        if kind == "application/pdf":
            assert kept == content  # checked, not rewritten (images are re-encoded)
        assert "scan" not in stored.stored_name
        assert not Path(app.static_folder or "/none").joinpath(stored.stored_name).exists()

    def test_a_pdf_renamed_to_png_is_judged_by_its_content(self, physio: FlaskClient) -> None:
        response = self.upload(physio, self.credential(physio), PDF, "photo.png", "image/png")
        assert response.status_code == 201
        assert response.get_json()["content_type"] == "application/pdf"

    def test_an_executable_renamed_to_pdf_is_refused(
        self, physio: FlaskClient, evidence_backend: Backend
    ) -> None:
        response = self.upload(
            physio, self.credential(physio), EXECUTABLE, "licence.pdf", "application/pdf"
        )
        assert response.status_code == 422
        assert "PDF, PNG or JPEG" in response.get_json()["error"]["details"]["fields"]["file"][0]
        assert evidence_backend.names() == set()

    def test_a_large_scan_within_ten_megabytes_is_accepted(
        self, physio: FlaskClient, evidence_backend: Backend
    ) -> None:
        content = pdf_of_size(MAX_EVIDENCE_BYTES)
        response = self.upload(
            physio, self.credential(physio), content, "scan.pdf", "application/pdf"
        )
        assert response.status_code == 201
        assert response.get_json()["size_bytes"] == MAX_EVIDENCE_BYTES
        (key,) = evidence_backend.names()
        assert evidence_backend.read(key) == content

    def test_eleven_megabytes_is_413(self, physio: FlaskClient) -> None:
        big = PDF + b"0" * (11 * 1024 * 1024)
        response = self.upload(physio, self.credential(physio), big, "big.pdf", "application/pdf")
        assert response.status_code == 413
        assert response.get_json()["error"]["code"] == "payload_too_large"

    def test_just_over_ten_megabytes_of_file_is_413_and_leaves_nothing(
        self, physio: FlaskClient, evidence_backend: Backend
    ) -> None:
        content = PDF + b"0" * (MAX_EVIDENCE_BYTES - len(PDF) + 1)
        response = self.upload(physio, self.credential(physio), content, "a.pdf", "application/pdf")
        assert response.status_code == 413
        assert evidence_backend.names() == set()

    def test_only_its_practitioner_and_admins_can_read_it(
        self, physio: FlaskClient, app: Flask, db: Session, evidence_backend: Backend
    ) -> None:
        credential_id = self.credential(physio)
        evidence_id = self.upload(physio, credential_id, PNG, "a.png", "image/png").get_json()["id"]
        own = physio.get(
            f"/api/v1/practitioners/me/credentials/{credential_id}/evidence/{evidence_id}"
        )
        assert own.status_code == 200
        assert own.data == evidence_backend.read(db.scalars(select(Evidence)).one().stored_name)
        assert own.headers["Content-Type"] == "image/png"
        assert own.headers["Content-Disposition"].startswith("attachment")
        assert_sandboxed(own, frame_ancestors="'none'")
        assert db.scalar(select(AuditEntry).where(AuditEntry.action == "evidence.viewed")) is None

        stranger = app.test_client()
        logged_in(stranger, "practitioner")
        url = f"/api/v1/practitioners/me/credentials/{credential_id}/evidence/{evidence_id}"
        assert stranger.get(url).status_code == 404
        assert (
            stranger.get(
                f"/api/v1/admin/credentials/{credential_id}/evidence/{evidence_id}"
            ).status_code
            == 403
        )

    def test_json_only_elsewhere_multipart_only_for_uploads(self, physio: FlaskClient) -> None:
        response = physio.post(
            "/api/v1/practitioners/me/credentials",
            data={"kind": "hcpc", "number": "PH1"},
            content_type="multipart/form-data",
        )
        assert response.status_code == 415


_NUMBERS = itertools.count(300100)


def upload_evidence(client: FlaskClient, content: bytes, name: str = "scan.pdf") -> Any:
    """A new HCPC credential of the client's, with `content` uploaded as its evidence."""
    number = f"PH{next(_NUMBERS)}"
    credential_id = submit(client, kind="hcpc", number=number).get_json()["id"]
    return client.post(
        f"/api/v1/practitioners/me/credentials/{credential_id}/evidence",
        data={"file": (io.BytesIO(content), name, "application/octet-stream")},
        content_type="multipart/form-data",
    )


def assert_refused(response: Any, code: str, backend: Backend, db: Session) -> None:
    """A clear 422 in the error envelope, naming the file, and nothing kept."""
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["details"]["fields"]["file"][0]
    assert backend.names() == set()
    assert db.scalars(select(Evidence)).all() == []


def with_open_action_script() -> bytes:
    writer = pdf_writer()
    writer.add_open_action(JavaScript("app.alert('hi')"))
    return written(writer)


def with_named_script() -> bytes:
    """Document-level JavaScript in the catalog's name tree, with no action pointing at it."""
    writer = pdf_writer()
    script = writer._add_object(
        DictionaryObject(
            {
                NameObject("/S"): NameObject("/JavaScript"),
                NameObject("/JS"): TextStringObject("app.alert('hi')"),
            }
        )
    )
    names = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("a"), script])})
    writer.root_object[NameObject("/Names")] = DictionaryObject(
        {NameObject("/JavaScript"): writer._add_object(names)}
    )
    return written(writer)


def with_page_action(kind: str) -> bytes:
    """An additional action (on the page opening) of the given kind, with no script key."""
    writer = pdf_writer()
    action = DictionaryObject(
        {NameObject("/S"): NameObject(kind), NameObject("/F"): TextStringObject("calc.exe")}
    )
    writer.pages[0][NameObject("/AA")] = DictionaryObject({NameObject("/O"): action})
    return written(writer)


def with_embedded_file() -> bytes:
    writer = pdf_writer()
    writer.add_attachment("payload.html", b"<script>alert(1)</script>")
    return written(writer)


def with_xfa_form() -> bytes:
    writer = pdf_writer()
    xfa = StreamObject()
    xfa.set_data(b"<xdp:xdp xmlns:xdp='http://ns.adobe.com/xdp/'/>")
    writer.root_object[NameObject("/AcroForm")] = DictionaryObject(
        {NameObject("/Fields"): ArrayObject(), NameObject("/XFA"): writer._add_object(xfa)}
    )
    return written(writer)


class TestPdfContent:
    """The whole PDF is parsed (pypdf); its header alone proves nothing."""

    def test_a_pdf_header_followed_by_html_and_script_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        polyglot = b"%PDF-1.4\n<html><body><script>fetch('/api/v1/admin/audit')</script>\n%%EOF\n"
        response = upload_evidence(physio, polyglot)
        assert_refused(response, "evidence_unreadable", evidence_backend, db)

    def test_a_real_pdf_made_with_pypdf_is_accepted_as_it_is(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        writer = pdf_writer(pages=2)
        writer.add_metadata({"/Title": "HCPC registration"})
        content = written(writer)
        response = upload_evidence(physio, content)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["content_type"] == "application/pdf"
        assert evidence_backend.read(db.scalars(select(Evidence)).one().stored_name) == content

    def test_a_pdf_protected_only_against_editing_is_accepted(self, physio: FlaskClient) -> None:
        writer = pdf_writer()
        writer.encrypt(user_password="", owner_password="issuer", algorithm="AES-256")
        assert upload_evidence(physio, written(writer)).status_code == 201

    def test_a_pdf_that_needs_a_password_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        writer = pdf_writer()
        writer.encrypt(user_password="secret", algorithm="AES-256")
        response = upload_evidence(physio, written(writer))
        assert_refused(response, "evidence_unreadable", evidence_backend, db)
        assert "password" in response.get_json()["error"]["message"]

    @pytest.mark.parametrize(
        ("build", "what"),
        [
            pytest.param(with_open_action_script, "JavaScript", id="open-action-javascript"),
            pytest.param(with_named_script, "JavaScript", id="names-javascript"),
            pytest.param(lambda: with_page_action("/Launch"), "launch", id="launch-action"),
            pytest.param(with_embedded_file, "embedded file", id="embedded-file"),
            pytest.param(with_xfa_form, "XFA", id="xfa-form"),
        ],
    )
    def test_active_content_is_refused(
        self,
        physio: FlaskClient,
        db: Session,
        evidence_backend: Backend,
        build: Callable[[], bytes],
        what: str,
    ) -> None:
        content = build()
        assert PdfReader(io.BytesIO(content)).pages  # a valid PDF, refused for what it holds
        response = upload_evidence(physio, content)
        assert_refused(response, "evidence_unsafe", evidence_backend, db)
        assert what in response.get_json()["error"]["message"]

    def test_data_after_the_end_of_a_real_pdf_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        content = pdf_file() + b"<html><script>alert(document.domain)</script></html>"
        response = upload_evidence(physio, content)
        assert_refused(response, "evidence_unsafe", evidence_backend, db)

    def test_a_pdf_with_too_many_pages_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        assert upload_evidence(physio, pdf_file(pages=MAX_PDF_PAGES)).status_code == 201
        db.execute(delete(Evidence))
        response = upload_evidence(physio, pdf_file(pages=MAX_PDF_PAGES + 1))
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "evidence_too_complex"


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` one-bit pixels, with a few rows of data: a
    small upload that would take gigabytes to decode."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    rows = zlib.compress((b"\x00" * (1 + (width + 7) // 8)) * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def stored_image(db: Session, backend: Backend) -> tuple[bytes, Image.Image]:
    kept = backend.read(db.scalars(select(Evidence)).one().stored_name)
    image = Image.open(io.BytesIO(kept))
    image.load()
    return kept, image


class TestImageContent:
    """Images are decoded whole (Pillow) and stored re-encoded: only their pixels are kept."""

    @pytest.mark.parametrize(
        "header", [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0"], ids=["png", "jpeg"]
    )
    def test_an_image_header_followed_by_html_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend, header: bytes
    ) -> None:
        polyglot = header + b"<html><body><script>alert(document.cookie)</script></body></html>"
        response = upload_evidence(physio, polyglot, "photo.png")
        assert_refused(response, "evidence_unreadable", evidence_backend, db)

    def test_a_real_png_with_html_after_it_is_stored_re_encoded_without_the_html(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        html = b"<html><script>alert(document.domain)</script></html>"
        response = upload_evidence(physio, png_file(320, 200) + html, "photo.png")
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["content_type"] == "image/png"
        kept, image = stored_image(db, evidence_backend)
        assert html not in kept
        assert b"script" not in kept
        assert kept.endswith(b"IEND\xaeB`\x82")  # nothing after the image's last chunk
        assert (image.format, image.size) == ("PNG", (320, 200))
        assert response.get_json()["sha256"] == hashlib.sha256(kept).hexdigest()

    def test_a_jpeg_is_stored_without_its_exif_gps_position(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        photo = image_file("JPEG", 640, 480, exif=gps_exif())
        assert Image.open(io.BytesIO(photo)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
        response = upload_evidence(physio, photo, "photo.jpg")
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["content_type"] == "image/jpeg"
        kept, image = stored_image(db, evidence_backend)
        assert (image.format, image.size) == ("JPEG", (640, 480))
        assert not image.getexif()
        assert b"Exif" not in kept
        assert b"PhoneCo" not in kept

    def test_a_photo_is_turned_upright_before_its_orientation_is_dropped(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        exif = Image.Exif()
        exif[ExifTags.Base.Orientation] = 6  # taken with the phone on its side
        response = upload_evidence(physio, image_file("JPEG", 640, 480, exif=exif), "photo.jpg")
        assert response.status_code == 201, response.get_json()
        _, image = stored_image(db, evidence_backend)
        assert image.size == (480, 640)

    @pytest.mark.parametrize(
        ("width", "height"),
        [(MAX_IMAGE_PIXELS // 5000 + 1, 5000), (100_000, 100_000)],
        ids=["over-our-limit", "over-pillows-limit"],
    )
    def test_a_decompression_bomb_is_refused(
        self,
        physio: FlaskClient,
        db: Session,
        evidence_backend: Backend,
        width: int,
        height: int,
    ) -> None:
        bomb = png_declaring(width, height)
        assert len(bomb) < 100_000
        response = upload_evidence(physio, bomb, "photo.png")
        assert_refused(response, "evidence_too_complex", evidence_backend, db)

    def test_a_truncated_image_is_refused(
        self, physio: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        photo = image_file("JPEG", 640, 480)
        response = upload_evidence(physio, photo[: len(photo) // 2], "photo.jpg")
        assert_refused(response, "evidence_unreadable", evidence_backend, db)
