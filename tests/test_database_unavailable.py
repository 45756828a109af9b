"""PostgreSQL briefly away (a restart, a failover) is 503 `database_unavailable` with
Retry-After, never 500; tasks are retried. The real restart under gunicorn is in
tests/test_postgres_restart.py; these run on either database."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from flask import Flask
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from marketplace.accounts.models import User
from marketplace.db import get_database
from marketplace.errors import DATABASE_RETRY_AFTER_SECONDS, database_unavailable
from tests.support.api import assert_envelope


def wrapped(original: Exception, *, connection_invalidated: bool = False) -> sa_exc.StatementError:
    """What SQLAlchemy raises for a driver error (a DBAPIError for psycopg's, a StatementError
    wrapping any other)."""
    error = sa_exc.DBAPIError.instance(
        "SELECT 1", {}, original, psycopg.Error, connection_invalidated=connection_invalidated
    )
    assert isinstance(error, sa_exc.StatementError)
    return error


def raised_from(cause: Exception) -> Exception:
    try:
        try:
            raise cause
        except Exception as inner:
            raise sa_exc.PendingRollbackError("rolled back after a failure") from inner
    except Exception as outer:
        return outer


UNAVAILABLE = {
    "refused": wrapped(psycopg.OperationalError("connection failed: Connection refused")),
    "closed": wrapped(psycopg.InterfaceError("the connection is closed")),
    "admin shutdown": wrapped(psycopg.errors.AdminShutdown("terminating connection")),
    "starting up": wrapped(psycopg.errors.CannotConnectNow("the database system is starting")),
    "too many connections": wrapped(psycopg.errors.TooManyConnections("too many clients")),
    "invalidated": wrapped(psycopg.errors.QueryCanceled("gone"), connection_invalidated=True),
    "pool exhausted": sa_exc.TimeoutError("QueuePool limit reached"),
    "raised from one": raised_from(wrapped(psycopg.OperationalError("server closed"))),
}
NOT_UNAVAILABLE = {
    "deadlock": wrapped(psycopg.errors.DeadlockDetected("deadlock detected")),
    "unique violation": wrapped(psycopg.errors.UniqueViolation("duplicate key")),
    "statement timeout": wrapped(psycopg.errors.QueryCanceled("canceling statement")),
    "sqlite locked": wrapped(sqlite3.OperationalError("database is locked")),
    "a bug": RuntimeError("boom"),
}


@pytest.mark.parametrize("error", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_connection_failures_are_the_database_being_away(error: Exception) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize("error", NOT_UNAVAILABLE.values(), ids=NOT_UNAVAILABLE.keys())
def test_other_database_errors_are_not(error: Exception) -> None:
    assert not database_unavailable(error)


def assert_unavailable(response: TestResponse) -> None:
    assert_envelope(response, 503, "database_unavailable")
    assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER_SECONDS)


def test_a_connection_lost_mid_request_is_503_not_500(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def connection_lost(*_args: object, **_kwargs: object) -> None:
        raise UNAVAILABLE["admin shutdown"]

    monkeypatch.setattr("marketplace.accounts.service.authenticate", connection_lost)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        response = app.test_client().post(
            "/api/v1/auth/login", json={"email": "a@example.org", "password": "whatever1"}
        )
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = None
    assert_unavailable(response)
    assert "terminating" not in response.get_data(as_text=True)


def test_a_commit_that_fails_turns_the_201_into_503_and_keeps_nothing(
    app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def commit_fails(_session: Session) -> None:
        raise UNAVAILABLE["closed"]

    monkeypatch.setattr(get_database(app).session_factory.class_, "commit", commit_fails)
    response = app.test_client().post(
        "/api/v1/auth/register",
        json={
            "email": "late@example.org",
            "password": "a-long-test-password",
            "full_name": "Late Commit",
            "role": "patient",
        },
        headers={"X-Request-ID": "outage-1"},
    )
    monkeypatch.undo()
    assert_unavailable(response)
    assert "Location" not in response.headers
    assert response.headers["X-Request-ID"] == "outage-1"  # the other hooks' headers stay
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert db.scalar(select(User).where(User.email == "late@example.org")) is None


def test_a_task_that_finds_the_database_away_is_retried(app: Flask) -> None:
    celery = app.extensions["celery"]
    calls: list[int] = []

    @celery.task(name="tests.flaky_database_task")
    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise UNAVAILABLE["refused"]
        return "done"

    assert flaky.apply().get() == "done"
    assert len(calls) == 2


def test_a_task_that_fails_otherwise_is_not_retried(app: Flask) -> None:
    celery = app.extensions["celery"]
    calls: list[int] = []

    @celery.task(name="tests.buggy_task")
    def buggy() -> str:
        calls.append(1)
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        buggy.apply().get()
    assert len(calls) == 1
