"""The real services some tests need: PostgreSQL and Redis. A missing one skips the test on a
developer machine and fails it in CI (CI=true), where every service must be there."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/marketplace_test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def missing_service(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: every service must be available)", pytrace=False)
    pytest.skip(reason)


def require_redis() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        missing_service(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


def postgres_database(name: str | None = None) -> str:
    """The URL of a PostgreSQL test database with an empty public schema (created if missing)."""
    parts = urlsplit(POSTGRES_URL)
    database = name or parts.path.lstrip("/")
    url = urlunsplit(parts._replace(path=f"/{database}"))
    server = create_engine(
        urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT"
    )
    try:
        with server.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": database}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{database}"'))
    except OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port}: {exc}")
    finally:
        server.dispose()
    reset_postgres_schema(url)
    return url


def reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
