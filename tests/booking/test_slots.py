"""Free slots: open hours minus held bookings and buffers (travel buffer between home visits)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from marketplace.booking.models import BookingStatus
from marketplace.booking.slots import free_slots_of
from marketplace.practitioners.models import Mode, Practitioner
from tests.support.factories import make_booking, make_practitioner

# GMT: local time = UTC. Within a year of any day from now on, so within the listing.
MONDAY = datetime(2027, 1, 4, tzinfo=UTC)
NOW = MONDAY - timedelta(days=3)


def starts(db: Session, practitioner: Practitioner, mode: str | None) -> list[str]:
    slots = free_slots_of(db, practitioner, MONDAY, MONDAY + timedelta(days=1), NOW, mode)
    return [f"{slot.start:%H:%M}" for slot in slots]


def test_bookings_and_buffers_take_time_out(db: Session) -> None:
    practitioner = make_practitioner(
        db, weekly=[{"weekday": 0, "start": time(9), "end": time(14), "modes": ["home", "video"]}]
    )
    practitioner.horizon_days = 3650
    make_booking(
        db,
        practitioner,
        MONDAY.replace(hour=11),
        MONDAY.replace(hour=12),
        mode=Mode.HOME,
    )
    # 15 min buffer: a 60-minute video slot must end by 10:45 or start from 12:15.
    assert starts(db, practitioner, "video") == [
        "09:00",
        "09:15",
        "09:30",
        "09:45",
        "12:15",
        "12:30",
        "12:45",
        "13:00",
    ]
    # Home after home also needs the 30 min travel buffer: end by 10:15, start from 12:45.
    assert starts(db, practitioner, "home") == ["09:00", "09:15", "12:45", "13:00"]
    both = free_slots_of(db, practitioner, MONDAY, MONDAY + timedelta(days=1), NOW, None)
    by_start = {f"{slot.start:%H:%M}": sorted(slot.modes) for slot in both}
    assert by_start["09:15"] == ["home", "video"]
    assert by_start["09:45"] == ["video"]


def test_cancelled_bookings_free_their_time(db: Session) -> None:
    practitioner = make_practitioner(
        db, weekly=[{"weekday": 0, "start": time(9), "end": time(10), "modes": ["video"]}]
    )
    practitioner.horizon_days = 3650
    make_booking(
        db,
        practitioner,
        MONDAY.replace(hour=9),
        MONDAY.replace(hour=10),
        mode=Mode.VIDEO,
        status=BookingStatus.CANCELLED,
    )
    assert starts(db, practitioner, "video") == ["09:00"]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])  # a range may come in any zone
def test_the_largest_buffers_still_block_the_edge_of_a_later_range(db: Session, zone: str) -> None:
    practitioner = make_practitioner(
        db, weekly=[{"weekday": 0, "start": time(9), "end": time(17), "modes": ["home"]}]
    )
    practitioner.horizon_days = 3650
    practitioner.buffer_minutes, practitioner.travel_buffer_minutes = 120, 180
    make_booking(
        db,
        practitioner,
        MONDAY.replace(hour=9),
        MONDAY.replace(hour=10),
        mode=Mode.HOME,
    )
    afternoon = MONDAY.replace(hour=14, minute=30).astimezone(ZoneInfo(zone))
    slots = free_slots_of(db, practitioner, afternoon, MONDAY + timedelta(days=1), NOW, "home")
    assert f"{slots[0].start.astimezone(UTC):%H:%M}" == "15:00"  # 10:00 + 2 h buffer + 3 h travel
