"""Property: whatever patients book, cancel and reschedule, in any order, no practitioner and no
patient ever holds two overlapping bookings."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.booking import bookings
from marketplace.booking.models import TIME_HOLDING, Booking
from marketplace.db import utcnow
from marketplace.errors import DomainError
from marketplace.practitioners.models import Mode
from tests.support.factories import BOOKING_POLICY, book, make_practitioner, make_user, weekday_at

STARTS = [(hour, minute) for hour in range(9, 16) for minute in (0, 15, 30, 45)]
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("book"),
            st.integers(0, 2),  # patient
            st.integers(0, 1),  # practitioner
            st.sampled_from(STARTS),
            st.sampled_from([Mode.VIDEO, Mode.HOME]),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("reschedule"), st.integers(0, 20), st.sampled_from(STARTS)),
    ),
    min_size=1,
    max_size=25,
)


def overlapping_pairs(rows: list[Booking]) -> list[tuple[Booking, Booking]]:
    return [
        (a, b)
        for a in rows
        for b in rows
        if a.id < b.id
        and (a.practitioner_id == b.practitioner_id or a.patient_id == b.patient_id)
        and a.starts_at < b.ends_at
        and b.starts_at < a.ends_at
    ]


def apply(db: Session, step: tuple[Any, ...], people: dict[str, Any], made: list[Booking]) -> None:
    action = step[0]
    if action == "book":
        _, patient, practitioner, (hour, minute), mode = step
        place = {"address": "1 Test Street", "postcode": "SW1A 1AA"} if mode is Mode.HOME else {}
        made.append(
            book(
                db,
                people["patients"][patient],
                people["practitioners"][practitioner],
                weekday_at(hour, minute=minute),
                mode,
                **place,
            )
        )
    elif made and action == "cancel":
        booking = made[step[1] % len(made)]
        actor = people["by_id"][booking.patient_id]
        bookings.cancel_booking(db, actor, booking.id, None, now=utcnow(), policy=BOOKING_POLICY)
    elif made and action == "reschedule":
        booking = made[step[1] % len(made)]
        hour, minute = step[2]
        actor = people["by_id"][booking.patient_id]
        bookings.reschedule_booking(
            db, actor, booking.id, weekday_at(hour, minute=minute), now=utcnow()
        )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=steps)
def test_no_overlapping_held_bookings_after_any_sequence(db: Session, steps: list[Any]) -> None:
    savepoint = db.begin_nested()
    try:
        patients = [make_user(db) for _ in range(3)]
        people: dict[str, Any] = {
            "patients": patients,
            "practitioners": [make_practitioner(db) for _ in range(2)],
            "by_id": {patient.id: patient for patient in patients},
        }
        made: list[Booking] = []
        for step in steps:
            try:
                with db.begin_nested():
                    apply(db, step, people, made)
            except DomainError:
                pass  # refused (taken, busy, cancelled already): the invariant must still hold
            held = list(db.scalars(select(Booking).where(Booking.status.in_(TIME_HOLDING))))
            assert overlapping_pairs(held) == []
    finally:
        savepoint.rollback()
