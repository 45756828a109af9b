"""The evidence store: what each backend keeps."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.admin.test_verification import credential_through_the_api
from tests.conftest import logged_in
from tests.support.storage import Backend

PDF = b"%PDF-1.4 a scanned certificate"


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


class TestEveryBackend:
    def test_a_row_whose_file_is_gone_is_a_404(
        self, practitioner: tuple[FlaskClient, str], evidence_backend: Backend
    ) -> None:
        client, credential_id = practitioner
        evidence_id = upload(client, credential_id).json["id"]
        (key,) = evidence_backend.names()
        evidence_backend.store.delete(key)
        response = client.get(
            f"/api/v1/practitioners/me/credentials/{credential_id}/evidence/{evidence_id}"
        )
        assert response.status_code == 404
        assert response.json["error"]["code"] == "file_missing"

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
