"""Evidence storage backends for tests.

A `Backend` also looks at what is stored directly, not through the store under test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import pytest
from flask import Flask

from marketplace.storage import FilesystemStore, ObjectStore


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


@pytest.fixture
def evidence_backend(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A backend of its own as the app's evidence store."""
    backend = FolderBackend(tmp_path / "evidence")
    monkeypatch.setitem(app.extensions, "evidence_store", backend.store)
    return backend
