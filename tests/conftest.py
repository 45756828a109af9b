"""Test set-up. The database is chosen with TEST_DATABASE=sqlite (default) or postgresql;
every test runs inside a transaction that is rolled back, on a schema built by the migrations."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["MARKETPLACE_ENV"] = "testing"
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ["INSTANCE_PATH"] = tempfile.mkdtemp(prefix="marketplace-test-instance-")
for _name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
    os.environ.pop(_name, None)

from flask import Flask  # noqa: E402
from flask.testing import FlaskClient  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from marketplace import create_app, migrate  # noqa: E402
from marketplace.db import Database, get_database  # noqa: E402
from marketplace.extensions import limiter  # noqa: E402
from marketplace.geo.geocoding import load_builtin_london_outcodes  # noqa: E402
from tests.support.services import postgres_database  # noqa: E402

DATABASE_KIND = os.environ.get("TEST_DATABASE", "sqlite")
if DATABASE_KIND not in {"sqlite", "postgresql"}:
    raise pytest.UsageError("TEST_DATABASE must be sqlite or postgresql")

PASSWORD = "a-long-test-password"

pytest_plugins = ["tests.support.storage"]  # moto_s3, evidence_backend


def pytest_report_header() -> str:
    return f"database: {DATABASE_KIND}"


def fresh_database_url(tmp_path: Path, name: str) -> str:
    """An empty database of the kind under test."""
    if DATABASE_KIND == "postgresql":
        return postgres_database(name)
    return f"sqlite:///{tmp_path / name}.db"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = fresh_database_url(tmp_path_factory.mktemp("db"), "marketplace_test")
    migrate.upgrade(url)
    database = Database(url)
    with database.session_scope() as session:
        load_builtin_london_outcodes(session)
    database.engine.dispose()
    return url


def testing_config(database_url: str) -> dict[str, Any]:
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "RATELIMIT_STORAGE_URI": "memory://",
        "SESSION_COOKIE_SECURE": False,
        "CELERY": {"broker_url": "memory://", "task_ignore_result": True},
    }


@pytest.fixture(scope="session")
def app(database_url: str) -> Flask:
    return create_app(testing_config(database_url))


@pytest.fixture
def db(app: Flask) -> Iterator[Session]:
    """A session for the test itself; the app's request sessions share its rolled-back
    transaction, each in a SAVEPOINT that their commit releases."""
    database = get_database(app)
    connection = database.engine.connect()
    transaction = connection.begin()
    original_factory = database.session_factory
    database.session_factory = sessionmaker(
        bind=connection,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
        info=original_factory.kw["info"],  # the application's settings, as in production
    )
    session = database.session_factory()
    try:
        yield session
    finally:
        session.close()
        database.session_factory = original_factory
        transaction.rollback()
        connection.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits(app: Flask) -> None:
    with app.app_context():
        limiter.reset()
    app.extensions["login_throttle"].store.reset()


@pytest.fixture
def client(app: Flask, db: Session) -> FlaskClient:
    return app.test_client()


def register(
    client: FlaskClient,
    *,
    email: str = "pat@example.org",
    role: str = "patient",
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Pat Doe", "role": role, **extra},
    )
    assert response.status_code == 201, response.json
    body: dict[str, Any] = response.json  # type: ignore[assignment]
    return body


def login(client: FlaskClient, email: str = "pat@example.org", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def logged_in(
    client: FlaskClient, role: str = "patient", email: str | None = None
) -> dict[str, Any]:
    """Register and log in a new account of `role` (patient or practitioner) on `client`."""
    email = email or f"{role}-{os.urandom(4).hex()}@example.org"
    user = register(client, email=email, role=role)
    assert login(client, email=email).status_code == 200
    return user


def log_in_as(client: FlaskClient, email: str) -> None:
    assert login(client, email=email).status_code == 200
