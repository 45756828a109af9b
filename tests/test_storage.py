"""The evidence store: what each backend keeps, and a clean 503 when the object store is down."""

from __future__ import annotations

import errno
import io
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.audit.models import AuditEntry
from marketplace.config import ConfigurationError, build_config
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import Evidence
from marketplace.storage import FilesystemStore, S3Store, s3_client, store_from_config
from tests.support.accounts import PASSWORD, log_in_as, logged_in
from tests.support.admin_pages import sign_in
from tests.support.evidence_files import pdf_file
from tests.support.factories import make_user, pending_credential
from tests.support.practitioner_api import credential_through_the_api
from tests.support.storage import REGION, Backend, BucketBackend, MotoS3, free_loopback_port

PDF = pdf_file()


def upload(client: FlaskClient, credential_id: str, content: bytes = PDF) -> Any:
    return client.post(
        f"/api/v1/practitioners/me/credentials/{credential_id}/evidence",
        data={"file": (io.BytesIO(content), "scan.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )


@pytest.fixture
def practitioner(client: FlaskClient) -> tuple[FlaskClient, str]:
    """A logged-in practitioner and their pending credential's id."""
    logged_in(client, "practitioner")
    return client, credential_through_the_api(client, "PH424243")


def use_store(app: Flask, monkeypatch: pytest.MonkeyPatch, store: Any) -> None:
    monkeypatch.setitem(app.extensions, "evidence_store", store)


def missing_bucket(moto_s3: MotoS3) -> S3Store:
    return S3Store(moto_s3.client, "no-such-evidence-bucket")


def unreachable_endpoint() -> S3Store:
    closed = f"http://127.0.0.1:{free_loopback_port()}"
    return S3Store(s3_client(closed, REGION), "evidence")


def assert_storage_unavailable(response: Any) -> None:
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert set(response.get_json()["error"]) == {"code", "message", "details"}


class TestS3:
    def test_an_upload_is_a_private_object_with_its_content_type(
        self, practitioner: tuple[FlaskClient, str], app: Flask, moto_s3: MotoS3, monkeypatch: Any
    ) -> None:
        backend = BucketBackend(moto_s3, moto_s3.new_bucket())
        use_store(app, monkeypatch, backend.store)
        client, credential_id = practitioner
        response = upload(client, credential_id)
        assert response.status_code == 201, response.get_json()
        (key,) = backend.names()
        stored = moto_s3.client.get_object(Bucket=backend.bucket, Key=key)
        assert stored["Body"].read() == PDF
        assert stored["ContentType"] == "application/pdf"
        grants = moto_s3.client.get_object_acl(Bucket=backend.bucket, Key=key)["Grants"]
        assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
        assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)

    def test_a_missing_bucket_is_a_503_and_leaves_no_row(
        self,
        practitioner: tuple[FlaskClient, str],
        app: Flask,
        db: Session,
        moto_s3: MotoS3,
        monkeypatch: Any,
    ) -> None:
        use_store(app, monkeypatch, missing_bucket(moto_s3))
        client, credential_id = practitioner
        assert_storage_unavailable(upload(client, credential_id))
        assert db.scalars(select(Evidence)).all() == []

    def test_an_unreachable_endpoint_is_a_503_and_leaves_no_row(
        self, practitioner: tuple[FlaskClient, str], app: Flask, db: Session, monkeypatch: Any
    ) -> None:
        use_store(app, monkeypatch, unreachable_endpoint())
        client, credential_id = practitioner
        assert_storage_unavailable(upload(client, credential_id))
        assert db.scalars(select(Evidence)).all() == []

    def test_an_admin_read_while_the_store_is_down_is_a_503_and_not_audited(
        self, client: FlaskClient, app: Flask, db: Session, moto_s3: MotoS3, monkeypatch: Any
    ) -> None:
        backend = BucketBackend(moto_s3, moto_s3.new_bucket())
        credential = pending_credential(db)
        evidence = practitioners.add_evidence(
            db, credential.practitioner.user, credential.id, io.BytesIO(PDF), backend.store
        )
        use_store(app, monkeypatch, unreachable_endpoint())
        admin = make_user(db, Role.ADMIN)
        log_in_as(client, admin.email)
        api = client.get(f"/api/v1/admin/credentials/{credential.id}/evidence/{evidence.id}")
        assert_storage_unavailable(api)
        assert sign_in(client, admin.email).status_code == 302
        page = client.get(f"/admin/credentials/{credential.id}/evidence/{evidence.id}")
        assert page.status_code == 503
        assert page.mimetype == "text/html"
        assert "storage is unavailable" in page.get_data(as_text=True)
        viewed = select(AuditEntry).where(AuditEntry.action == "evidence.viewed")
        assert db.scalars(viewed).all() == []

    def test_erasure_with_the_store_down_still_erases_and_logs_what_is_left(
        self,
        client: FlaskClient,
        app: Flask,
        db: Session,
        moto_s3: MotoS3,
        monkeypatch: Any,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        backend = BucketBackend(moto_s3, moto_s3.new_bucket())
        credential = pending_credential(db)
        user = credential.practitioner.user
        evidence = practitioners.add_evidence(
            db, user, credential.id, io.BytesIO(PDF), backend.store
        )
        use_store(app, monkeypatch, missing_bucket(moto_s3))
        log_in_as(client, user.email)
        with caplog.at_level(logging.ERROR, logger="marketplace.privacy.service"):
            assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
        assert db.scalars(select(Evidence)).all() == []
        left = [r.getMessage() for r in caplog.records if r.name == "marketplace.privacy.service"]
        assert left == [
            f"erased evidence {evidence.stored_name} is still in storage: delete it by hand"
        ]


class TestFilesystemFailures:
    """A full disk or a folder that cannot be written: a clean 503, no row, no file left."""

    @staticmethod
    def assert_nothing_kept(db: Session, folder: Path) -> None:
        assert db.scalars(select(Evidence)).all() == []
        if folder.is_dir():
            assert list(folder.iterdir()) == []  # no partial file either

    @pytest.mark.parametrize("where", ["folder", "parent"])
    def test_a_file_where_the_folder_should_be_is_a_503(
        self,
        practitioner: tuple[FlaskClient, str],
        app: Flask,
        db: Session,
        tmp_path: Path,
        monkeypatch: Any,
        where: str,
    ) -> None:
        in_the_way = tmp_path / "evidence"
        in_the_way.write_bytes(b"not a folder")
        folder = in_the_way if where == "folder" else in_the_way / "files"
        use_store(app, monkeypatch, FilesystemStore(folder))
        client, credential_id = practitioner
        assert_storage_unavailable(upload(client, credential_id))
        assert db.scalars(select(Evidence)).all() == []
        assert in_the_way.read_bytes() == b"not a folder"

    def test_an_unwritable_folder_is_a_503(
        self,
        practitioner: tuple[FlaskClient, str],
        app: Flask,
        db: Session,
        tmp_path: Path,
        monkeypatch: Any,
    ) -> None:
        folder = tmp_path / "evidence"
        folder.mkdir()
        folder.chmod(0o500)
        if os.geteuid() == 0:  # root writes anyway (CI): make the folder refuse as it would

            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

            monkeypatch.setattr(tempfile, "mkstemp", refuse)
        use_store(app, monkeypatch, FilesystemStore(folder))
        client, credential_id = practitioner
        try:
            assert_storage_unavailable(upload(client, credential_id))
        finally:
            folder.chmod(0o700)
        self.assert_nothing_kept(db, folder)

    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to find the fd")
    @pytest.mark.parametrize("fails_at", ["write", "fsync"])
    def test_a_full_disk_is_a_503_and_leaves_no_partial_file(
        self,
        practitioner: tuple[FlaskClient, str],
        app: Flask,
        db: Session,
        tmp_path: Path,
        monkeypatch: Any,
        caplog: pytest.LogCaptureFixture,
        fails_at: str,
    ) -> None:
        """ENOSPC cannot be made safely for real, so the store's own writes meet it: the first
        write takes half the bytes (a partial file exists), the next one or the fsync fails."""
        folder = tmp_path / "evidence"
        real_write, real_fsync = os.write, os.fsync
        written: list[int] = []

        def in_store(fd: int) -> bool:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder))

        def write(fd: int, data: Any) -> int:
            if not in_store(fd):
                return real_write(fd, data)
            if written and fails_at == "write":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            written.append(real_write(fd, bytes(data)[: max(len(data) // 2, 1)]))
            return written[-1]

        def fsync(fd: int) -> None:
            if in_store(fd) and fails_at == "fsync":
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)
        use_store(app, monkeypatch, FilesystemStore(folder))
        client, credential_id = practitioner
        with caplog.at_level(logging.ERROR, logger="marketplace.storage"):
            assert_storage_unavailable(upload(client, credential_id))
        assert written  # part of the file had reached the disk
        self.assert_nothing_kept(db, folder)
        assert "ENOSPC" in caplog.text
        monkeypatch.setattr(os, "write", real_write)
        monkeypatch.setattr(os, "fsync", real_fsync)
        assert upload(client, credential_id).status_code == 201  # space again: it works


class TestEveryBackend:
    def test_a_row_whose_file_is_gone_is_a_404(
        self, practitioner: tuple[FlaskClient, str], evidence_backend: Backend
    ) -> None:
        client, credential_id = practitioner
        evidence_id = upload(client, credential_id).get_json()["id"]
        (key,) = evidence_backend.names()
        evidence_backend.store.delete(key)
        response = client.get(
            f"/api/v1/practitioners/me/credentials/{credential_id}/evidence/{evidence_id}"
        )
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "file_missing"

    def test_a_stream_that_fails_midway_leaves_nothing_stored(
        self, evidence_backend: Backend
    ) -> None:
        class BrokenUpload(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                if self.tell() > 0:
                    raise OSError("the client went away")
                return super().read(4)

        with pytest.raises(OSError, match="went away"):
            evidence_backend.store.put("a" * 32, BrokenUpload(PDF * 10), "application/pdf")
        assert evidence_backend.names() == set()


class TestConfiguration:
    def test_s3_needs_a_bucket(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="EVIDENCE_S3_BUCKET"):
            build_config(tmp_path, {"EVIDENCE_STORAGE": "s3"})

    def test_only_known_backends(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="filesystem or s3"):
            build_config(tmp_path, {"EVIDENCE_STORAGE": "ftp"})

    def test_the_configured_bucket_and_endpoint_are_used(
        self, tmp_path: Path, moto_s3: MotoS3
    ) -> None:
        bucket = moto_s3.new_bucket()
        config = build_config(
            tmp_path,
            {
                "EVIDENCE_STORAGE": "s3",
                "EVIDENCE_S3_BUCKET": bucket,
                "EVIDENCE_S3_ENDPOINT_URL": moto_s3.endpoint_url,
                "EVIDENCE_S3_REGION": REGION,
            },
        )
        store = store_from_config(config)
        store.put("b" * 32, io.BytesIO(PDF), "application/pdf")
        assert moto_s3.client.get_object(Bucket=bucket, Key="b" * 32)["Body"].read() == PDF
        with store.open("b" * 32) as stored:
            assert stored.read() == PDF
