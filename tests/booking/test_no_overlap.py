"""The database itself refuses overlapping held time for one practitioner (both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from marketplace.booking.models import Booking, BookingStatus
from marketplace.practitioners.models import Mode, Practitioner
from tests.support.factories import make_booking, make_practitioner

NINE = datetime(2030, 1, 7, 9, tzinfo=UTC)


def book(
    db: Session,
    practitioner: Practitioner,
    start: datetime,
    minutes: int = 60,
    status: BookingStatus = BookingStatus.CONFIRMED,
) -> Booking:
    with db.begin_nested():
        return make_booking(
            db,
            practitioner,
            start,
            start + timedelta(minutes=minutes),
            mode=Mode.VIDEO,
            status=status,
        )


@pytest.mark.parametrize(
    ("start", "minutes"),
    [
        (NINE, 60),
        (NINE + timedelta(minutes=30), 60),
        (NINE - timedelta(minutes=30), 45),
        (NINE + timedelta(minutes=15), 15),
        (NINE - timedelta(hours=1), 180),
    ],
)
def test_overlaps_of_any_length_are_refused(db: Session, start: datetime, minutes: int) -> None:
    practitioner = make_practitioner(db)
    book(db, practitioner, NINE)
    with pytest.raises(DBAPIError):
        book(db, practitioner, start, minutes)


def test_touching_cancelled_and_other_practitioners_are_fine(db: Session) -> None:
    practitioner, other = make_practitioner(db), make_practitioner(db)
    first = book(db, practitioner, NINE)
    book(db, practitioner, NINE + timedelta(hours=1))  # touching
    book(db, other, NINE)  # someone else's diary
    book(db, practitioner, NINE, status=BookingStatus.CANCELLED)  # holds no time
    first.status = BookingStatus.CANCELLED
    db.flush()
    book(db, practitioner, NINE + timedelta(minutes=15), 30)  # the cancelled time is free again


def test_moving_a_booking_onto_held_time_is_refused(db: Session) -> None:
    practitioner = make_practitioner(db)
    book(db, practitioner, NINE)
    later = book(db, practitioner, NINE + timedelta(hours=2))

    def move(start: datetime) -> None:
        with db.begin_nested():
            later.starts_at, later.ends_at = start, start + timedelta(hours=1)
            db.flush()

    with pytest.raises(DBAPIError):
        move(NINE + timedelta(minutes=30))
