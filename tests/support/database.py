"""The database under test: its kind (TEST_DATABASE=sqlite, the default, or postgresql), a fresh
empty one for tests that need their own, and the configuration of an app under test on one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import postgres_database

DATABASE_KIND = os.environ.get("TEST_DATABASE", "sqlite")
if DATABASE_KIND not in {"sqlite", "postgresql"}:
    raise pytest.UsageError("TEST_DATABASE must be sqlite or postgresql")


def fresh_database_url(tmp_path: Path, name: str) -> str:
    """An empty database of the kind under test."""
    if DATABASE_KIND == "postgresql":
        return postgres_database(name)
    return f"sqlite:///{tmp_path / name}.db"


def app_config(database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SESSION_COOKIE_SECURE": False,
        "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
    }
