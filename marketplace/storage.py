"""Private file storage behind one interface: a folder on this machine (the embedded default).

Keys are opaque, unguessable names chosen by the caller; nothing stored is ever served directly.
`put` leaves either the whole object under its key or nothing, so a row naming a key never
points at half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from flask import Flask, current_app

from marketplace.errors import NotFound


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
        self.folder.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed into place: readers never see part of a file.
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
        try:
            with os.fdopen(handle, "wb") as out:
                shutil.copyfileobj(data, out)
            os.replace(temporary, self._path(key))
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


def store_from_config(config: Mapping[str, Any]) -> ObjectStore:
    """The evidence store the configuration names."""
    return FilesystemStore(Path(config["EVIDENCE_DIR"]))


def init_evidence_store(app: Flask) -> None:
    app.extensions["evidence_store"] = store_from_config(app.config)


def evidence_store() -> ObjectStore:
    """The app's evidence store: every reader and writer of evidence files goes through it."""
    store: ObjectStore = current_app.extensions["evidence_store"]
    return store
