"""Concurrent writers on a real database file or server (not the rolled-back test transaction)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from marketplace import migrate
from marketplace.accounts import service
from marketplace.accounts.models import Role, User
from marketplace.db import Database
from tests.conftest import PASSWORD, fresh_database_url

POLICY = service.SessionPolicy(
    idle=service.timedelta(minutes=30), absolute=service.timedelta(hours=12)
)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    url = fresh_database_url(tmp_path, "marketplace_test_concurrency")
    migrate.upgrade(url)
    database = Database(url)
    yield database
    database.engine.dispose()


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Start `count` threads at once; each result is the return value or the exception."""
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_racing_registrations_of_one_email_make_one_account(database: Database) -> None:
    def register(_: int) -> str:
        with database.session_scope() as session:
            service.register_user(
                session,
                email="same@example.org",
                password=PASSWORD,
                full_name="S",
                role=Role.PATIENT,
            )
        return "created"

    results = run_together(6, register)
    assert results.count("created") == 1
    assert all(isinstance(r, service.EmailTaken) for r in results if r != "created"), results
    with database.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_concurrent_logins_all_succeed(database: Database) -> None:
    with database.session_scope() as session:
        service.create_user(
            session, email="busy@example.org", password=PASSWORD, full_name="B", role=Role.PATIENT
        )

    def log_in(_: int) -> str:
        with database.session_scope() as session:
            user = service.authenticate(session, "busy@example.org", PASSWORD)
            return service.start_login_session(session, user, POLICY).secret

    results = run_together(8, log_in)
    assert all(isinstance(result, str) for result in results), results
    assert len(set(results)) == 8
