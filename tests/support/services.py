"""The real services some tests need: PostgreSQL and Redis. A missing one skips the test on a
developer machine and fails it in CI (CI=true), where every service must be there."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError, SQLAlchemyError

IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/marketplace_test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Several checkouts of the project (worktrees, a CI clone) may test against one server at the
# same time: each names its databases with its own suffix, and drops them when the run ends.
CHECKOUT = hashlib.sha256(str(Path(__file__).resolve().parents[2]).encode()).hexdigest()[:8]


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
    database = f"{name or parts.path.lstrip('/')}_{CHECKOUT}"
    url = urlunsplit(parts._replace(path=f"/{database}"))
    server = _postgres_server()
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


def _postgres_server() -> Engine:
    parts = urlsplit(POSTGRES_URL)
    return create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")


def drop_checkout_databases() -> None:
    """Drop this checkout's test databases (FORCE ends the connections the run left open)."""
    server = _postgres_server()
    try:
        with server.connect() as connection:
            names = connection.scalars(
                text("SELECT datname FROM pg_database WHERE datname LIKE :pattern"),
                {"pattern": f"%\\_{CHECKOUT}"},
            ).all()
            for database in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    except SQLAlchemyError as exc:  # the server went away: say so, the run's result stands
        warnings.warn(f"could not drop the test databases: {exc}", stacklevel=1)
    finally:
        server.dispose()


def reset_postgres_schema(url: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


class PrivateRedis:
    """A redis-server of the test's own, on a free loopback port, that the test may kill and
    start again: the shared Redis other test runs use is never stopped or flushed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.pings():
            if time.monotonic() > deadline:
                pytest.fail(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: gone at once, nothing saved, every queued message lost."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def pings(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False


def free_port() -> int:
    """A loopback port free just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
