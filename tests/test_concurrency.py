"""Concurrent writers on a real database file or server (not the rolled-back test transaction)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from marketplace import create_app, migrate
from marketplace.accounts import service
from marketplace.accounts.models import Role, User
from marketplace.booking import bookings
from marketplace.booking.models import TIME_HOLDING, Booking, CareRequest, RequestStatus
from marketplace.clock import business_today
from marketplace.db import Database, get_database, utcnow
from marketplace.geo.geocoding import TableGeocoder, load_builtin_london_outcodes
from marketplace.practitioners.models import Mode, Practitioner
from tests.support.accounts import PASSWORD
from tests.support.database import app_config, fresh_database_url
from tests.support.factories import make_practitioner, weekday_at

POLICY = service.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


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


# --- bookings: the database keeps one booking per slot under a stampede -------------------------


@pytest.fixture
def booking_app(tmp_path: Path) -> Iterator[Flask]:
    url = fresh_database_url(tmp_path, "marketplace_test_booking_race")
    migrate.upgrade(url)
    app = create_app(app_config(url))
    with app.app_context(), get_database().session_scope() as session:
        load_builtin_london_outcodes(session)
    yield app
    get_database(app).engine.dispose()


def patients(app: Flask, count: int) -> list[uuid.UUID]:
    """Patients without the cost of hashing 64 passwords (nobody logs in as them)."""
    with app.app_context(), get_database().session_scope() as session:
        made = [
            User(
                email=f"racer{index}@example.org",
                full_name="Racer",
                role=Role.PATIENT,
                password_hash="$argon2id$v=19$m=19456,t=2,p=1$bm90$bm90",
            )
            for index in range(count)
        ]
        session.add_all(made)
        session.flush()
        return [user.id for user in made]


def practitioner_ids(app: Flask, count: int) -> list[uuid.UUID]:
    with app.app_context(), get_database().session_scope() as session:
        return [make_practitioner(session).id for _ in range(count)]


def book_in_own_transaction(
    app: Flask,
    patient_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    start: datetime,
    key: str | None = None,
) -> str:
    """A video booking as one request would make it; returns the booking's id."""
    with app.app_context(), get_database().session_scope() as session:
        patient = session.get(User, patient_id)
        assert patient is not None
        now = utcnow()
        booking, _created = bookings.create_booking(
            session,
            patient,
            bookings.BookingInput(practitioner_id, start, Mode.VIDEO),
            now=now,
            today=business_today(now),
            geocoder=TableGeocoder(),
            idempotency_key=key,
        )
        return str(booking.id)


def try_booking(
    app: Flask, patient_id: uuid.UUID, practitioner_id: uuid.UUID, start: datetime
) -> str:
    book_in_own_transaction(app, patient_id, practitioner_id, start)
    return "booked"


def held(app: Flask) -> list[Booking]:
    with app.app_context(), get_database().session_scope() as session:
        rows = session.scalars(select(Booking).where(Booking.status.in_(TIME_HOLDING))).all()
        session.expunge_all()
        return list(rows)


def assert_no_overlaps(rows: list[Booking]) -> None:
    for first in rows:
        for second in rows:
            if first.id != second.id and (
                first.practitioner_id == second.practitioner_id
                or first.patient_id == second.patient_id
            ):
                assert not (first.starts_at < second.ends_at and second.starts_at < first.ends_at)


def outcomes(results: list[object]) -> list[str]:
    return [r if isinstance(r, str) else type(r).__name__ for r in results]


RACERS = 64


def test_64_patients_racing_for_one_slot_make_one_booking(booking_app: Flask) -> None:
    (practitioner,) = practitioner_ids(booking_app, 1)
    racers = patients(booking_app, RACERS)
    start = weekday_at(10)
    results = outcomes(
        run_together(RACERS, lambda i: try_booking(booking_app, racers[i], practitioner, start))
    )
    assert results.count("booked") == 1, results
    assert results.count("SlotUnavailable") == RACERS - 1, results
    assert len(held(booking_app)) == 1


def test_overlapping_slots_at_different_offsets_make_one_booking(booking_app: Flask) -> None:
    (practitioner,) = practitioner_ids(booking_app, 1)
    racers = patients(booking_app, RACERS)
    starts = [weekday_at(10, minute=15 * (i % 4)) for i in range(RACERS)]
    results = outcomes(
        run_together(RACERS, lambda i: try_booking(booking_app, racers[i], practitioner, starts[i]))
    )
    assert results.count("booked") == 1, results
    assert len(held(booking_app)) == 1


def test_two_practitioners_raced_at_once_get_one_booking_each(booking_app: Flask) -> None:
    both = practitioner_ids(booking_app, 2)
    racers = patients(booking_app, RACERS)
    start = weekday_at(10)
    results = outcomes(
        run_together(RACERS, lambda i: try_booking(booking_app, racers[i], both[i % 2], start))
    )
    assert results.count("booked") == 2, results
    rows = held(booking_app)
    assert sorted(str(b.practitioner_id) for b in rows) == sorted(str(p) for p in both)
    assert_no_overlaps(rows)


def test_racing_claims_of_one_request_make_one_booking(booking_app: Flask) -> None:
    claimers = practitioner_ids(booking_app, 8)
    (patient_id,) = patients(booking_app, 1)
    start = weekday_at(10)
    with booking_app.app_context(), get_database().session_scope() as session:
        request = CareRequest(
            patient_id=patient_id,
            mode=Mode.VIDEO,
            specialty="stroke",
            earliest=start - timedelta(hours=1),
            latest=start + timedelta(hours=3),
        )
        session.add(request)
        session.flush()
        request_id = request.id
        claimer_users = [session.get_one(Practitioner, p).user_id for p in claimers]

    def claim(index: int) -> str:
        with booking_app.app_context(), get_database().session_scope() as session:
            user = session.get(User, claimer_users[index % len(claimers)])
            assert user is not None
            now = utcnow()
            bookings.claim_request(
                session, user, request_id, start, now=now, today=business_today(now)
            )
        return "claimed"

    results = outcomes(run_together(RACERS, claim))
    assert results.count("claimed") == 1, results
    assert set(results) - {"claimed"} <= {"RequestTaken", "PatientBusy", "SlotUnavailable"}
    assert len(held(booking_app)) == 1
    with booking_app.app_context(), get_database().session_scope() as session:
        assert session.get_one(CareRequest, request_id).status is RequestStatus.BOOKED


def test_a_reschedule_racing_a_booking_of_its_target_leaves_one_winner(
    booking_app: Flask,
) -> None:
    (practitioner,) = practitioner_ids(booking_app, 1)
    mover, rival = patients(booking_app, 2)
    old, target = weekday_at(10), weekday_at(14)
    try_booking(booking_app, mover, practitioner, old)
    (moving,) = held(booking_app)

    def reschedule() -> str:
        with booking_app.app_context(), get_database().session_scope() as session:
            user = session.get(User, mover)
            assert user is not None
            bookings.reschedule_booking(session, user, moving.id, target, now=utcnow())
        return "moved"

    results = outcomes(
        run_together(
            2,
            lambda i: (
                reschedule() if i == 0 else try_booking(booking_app, rival, practitioner, target)
            ),
        )
    )
    assert sorted(results) in (["SlotUnavailable", "booked"], ["SlotUnavailable", "moved"]), results
    rows = held(booking_app)
    assert_no_overlaps(rows)
    by_patient = {b.patient_id: b for b in rows}
    if "moved" in results:
        assert by_patient[mover].starts_at == target
        assert rival not in by_patient
    else:
        assert by_patient[mover].starts_at == old
        assert by_patient[rival].starts_at == target


def test_racing_retries_with_one_idempotency_key_return_one_booking(booking_app: Flask) -> None:
    (practitioner,) = practitioner_ids(booking_app, 1)
    (patient_id,) = patients(booking_app, 1)
    start = weekday_at(10)

    def retry(_: int) -> str:
        return book_in_own_transaction(booking_app, patient_id, practitioner, start, "one-key")

    results = run_together(16, retry)
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    assert len(held(booking_app)) == 1


def test_racing_bookings_within_the_buffer_of_each_other_make_one(booking_app: Flask) -> None:
    (practitioner,) = practitioner_ids(booking_app, 1)  # 60-minute visits, 15-minute buffer
    racers = patients(booking_app, 16)
    starts = [weekday_at(10) if i % 2 else weekday_at(11) for i in range(16)]
    results = outcomes(
        run_together(16, lambda i: try_booking(booking_app, racers[i], practitioner, starts[i]))
    )
    assert results.count("booked") == 1, results
