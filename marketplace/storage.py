"""Private file storage behind one interface: a folder on this machine (the embedded default) or
an S3-compatible object store (when more than one web machine serves).

Keys are opaque, unguessable names chosen by the caller; objects are never public (no ACL is
set, so a bucket's default, private, applies). `put` leaves either the whole object under its
key or nothing, so a row naming a key never points at half a file.
"""

from __future__ import annotations

import errno
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask, current_app

from marketplace.errors import DomainError, NotFound

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# A request fails over to a clean 503 within seconds instead of hanging a web worker.
_S3_CLIENT_CONFIG = Config(
    connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
)


class StorageUnavailable(DomainError):
    status = 503
    code = "storage_unavailable"
    message = "File storage is unavailable just now; try again later."


class StoredObjectMissing(NotFound):
    code = "file_missing"
    message = "The stored file is missing."


class ObjectStore(Protocol):
    def put(self, key: str, data: IO[bytes], content_type: str) -> None:
        """Store all of `data` (seekable, at its start) under `key`."""

    def open(self, key: str) -> IO[bytes]:
        """The object's bytes as a stream the caller closes."""

    def delete(self, key: str) -> None:
        """Remove the object; a key that is already gone is not an error."""


class FilesystemStore:
    """Files in one folder outside anything the web server serves."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def put(self, key: str, data: IO[bytes], content_type: str) -> None:
        """A disk that is full or a folder that cannot be written (or is not a folder) is
        StorageUnavailable, with nothing left behind; a failing `data` is raised as it is."""
        target = self._path(key)
        with _disk_failure("create"):
            self.folder.mkdir(parents=True, exist_ok=True)
            # Written beside the target and renamed into place: readers never see part of it.
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
        try:
            try:
                while chunk := data.read(_CHUNK):
                    with _disk_failure("write"):
                        _write_all(handle, chunk)
                with _disk_failure("write"):
                    os.fsync(handle)  # a full disk may only say so here
            finally:
                os.close(handle)
            with _disk_failure("rename"):
                os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> IO[bytes]:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise StoredObjectMissing() from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        if not key or Path(key).name != key or key.startswith("."):
            raise ValueError("a storage key is a plain file name")
        return self.folder / key


_CHUNK = 1024 * 1024


def _write_all(handle: int, chunk: bytes) -> None:
    view = memoryview(chunk)
    while view:
        view = view[os.write(handle, view) :]


@contextmanager
def _disk_failure(operation: str) -> Iterator[None]:
    """A full disk (ENOSPC, EDQUOT), a folder that cannot be written (EACCES, EROFS) or is not a
    folder at all: StorageUnavailable. Only the kind is logged."""
    try:
        yield
    except OSError as error:
        reason = errno.errorcode.get(error.errno or 0, type(error).__name__)
        log.error("evidence folder %s failed: %s", operation, reason)
        raise StorageUnavailable() from error


class S3Store:
    """Objects in one bucket of an S3-compatible store."""

    def __init__(self, client: S3Client, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: IO[bytes], content_type: str) -> None:
        # One PutObject (evidence is at most 10 MB): S3 stores all of it or nothing, where a
        # multipart upload could leave parts behind.
        with _unavailable_on_failure("put"):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)

    def open(self, key: str) -> IO[bytes]:
        with _unavailable_on_failure("get"):
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=key)
            except self.client.exceptions.NoSuchKey:
                raise StoredObjectMissing() from None
        return response["Body"]  # type: ignore[return-value]  # a StreamingBody reads like a file

    def delete(self, key: str) -> None:
        with _unavailable_on_failure("delete"):
            self.client.delete_object(Bucket=self.bucket, Key=key)


@contextmanager
def _unavailable_on_failure(operation: str) -> Iterator[None]:
    """Any failure to reach the store, or a refusal (no such bucket, access denied), becomes
    StorageUnavailable; only its kind is logged."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        reason = error.response["Error"].get("Code") if isinstance(error, ClientError) else None
        log.warning("object store %s failed: %s", operation, reason or type(error).__name__)
        raise StorageUnavailable() from error


def s3_client(endpoint_url: str | None, region: str | None) -> S3Client:
    """A client with credentials from the standard AWS chain (AWS_ACCESS_KEY_ID and
    AWS_SECRET_ACCESS_KEY, a profile, or an instance role). A custom endpoint (MinIO, Ceph, a
    local test server) is addressed by path, which they all accept."""
    config = _S3_CLIENT_CONFIG
    if endpoint_url:
        config = config.merge(Config(s3={"addressing_style": "path"}))
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
    )


def store_from_config(config: Mapping[str, Any]) -> ObjectStore:
    """The evidence store the configuration names (EVIDENCE_STORAGE)."""
    if config.get("EVIDENCE_STORAGE") == "s3":
        client = s3_client(config.get("EVIDENCE_S3_ENDPOINT_URL"), config.get("EVIDENCE_S3_REGION"))
        return S3Store(client, config["EVIDENCE_S3_BUCKET"])
    return FilesystemStore(Path(config["EVIDENCE_DIR"]))


def init_evidence_store(app: Flask) -> None:
    app.extensions["evidence_store"] = store_from_config(app.config)


def evidence_store() -> ObjectStore:
    """The app's evidence store: every reader and writer of evidence files goes through it."""
    store: ObjectStore = current_app.extensions["evidence_store"]
    return store
