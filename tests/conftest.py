"""Test set-up. The database is chosen with TEST_DATABASE=sqlite (default) or postgresql;
every test runs inside a transaction that is rolled back, on a schema built by the migrations."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

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
from tests.support.database import DATABASE_KIND, app_config, fresh_database_url  # noqa: E402
from tests.support.services import drop_checkout_databases  # noqa: E402

pytest_plugins = ["tests.support.storage"]  # moto_s3, evidence_backend


def pytest_report_header() -> str:
    return f"database: {DATABASE_KIND}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if DATABASE_KIND == "postgresql":
        drop_checkout_databases()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = fresh_database_url(tmp_path_factory.mktemp("db"), "marketplace_test")
    migrate.upgrade(url)
    database = Database(url)
    with database.session_scope() as session:
        load_builtin_london_outcodes(session)
    database.engine.dispose()
    return url


@pytest.fixture(scope="session")
def app(database_url: str) -> Flask:
    return create_app(app_config(database_url))


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
