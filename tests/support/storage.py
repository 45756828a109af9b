"""Evidence storage backends for tests: a folder, or a bucket on moto's S3 server (a real HTTP
endpoint on loopback, so the app's boto3 calls go over the wire as they would to S3).

A `Backend` also looks at what is stored directly (the folder, or a client of its own), not
through the store under test.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import pytest
from flask import Flask
from moto.server import ThreadedMotoServer

from marketplace.storage import FilesystemStore, ObjectStore, S3Store, s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

REGION: Final = "eu-west-2"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@dataclass
class MotoS3:
    endpoint_url: str
    client: S3Client

    def new_bucket(self) -> str:
        name = f"evidence-{uuid.uuid4().hex[:12]}"
        self.client.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        return name


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    """moto's server on a free loopback port, with fake credentials in the environment (the
    store reads the standard AWS variables, so no real account is ever touched)."""
    saved = {name: os.environ.get(name) for name in FAKE_CREDENTIALS}
    os.environ.update(FAKE_CREDENTIALS)
    port = free_loopback_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint_url = f"http://127.0.0.1:{port}"
        yield MotoS3(endpoint_url, s3_client(endpoint_url, REGION))
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class Backend(Protocol):
    """A store under test and a direct look at what it holds."""

    store: ObjectStore

    def names(self) -> set[str]: ...

    def read(self, key: str) -> bytes: ...


class FolderBackend:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.store: ObjectStore = FilesystemStore(folder)

    def names(self) -> set[str]:
        return {path.name for path in self.folder.glob("*")} if self.folder.exists() else set()

    def read(self, key: str) -> bytes:
        return (self.folder / key).read_bytes()


class BucketBackend:
    def __init__(self, moto: MotoS3, bucket: str) -> None:
        self.client = moto.client
        self.bucket = bucket
        self.store: ObjectStore = S3Store(moto.client, bucket)

    def names(self) -> set[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket)
        return {item["Key"] for item in listed.get("Contents", [])}

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()


def make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if kind == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        return BucketBackend(moto, moto.new_bucket())
    return FolderBackend(tmp_path / "evidence")


@pytest.fixture(params=["filesystem", "s3"])
def evidence_backend(
    request: pytest.FixtureRequest, app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    """Each backend in turn as the app's evidence store."""
    backend = make_backend(request.param, request, tmp_path)
    monkeypatch.setitem(app.extensions, "evidence_store", backend.store)
    return backend
