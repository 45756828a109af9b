"""A booking as an iCalendar file (RFC 5545), built with the icalendar library.

Times are written in UTC, so a visit stays at its instant on both sides of a DST change. The
UID is stable per booking, SEQUENCE rises with each reschedule or cancellation, and a cancelled
booking is sent as METHOD:CANCEL so calendars remove it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from icalendar import Calendar, Event

from marketplace.booking.models import Booking, BookingStatus
from marketplace.practitioners.models import Mode

PRODUCT_ID = "-//Practitioner marketplace//Bookings//EN"
STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",
}


def booking_uid(booking_id: uuid.UUID) -> str:
    return f"booking-{booking_id}@practitioner-marketplace"


@dataclass(frozen=True)
class Visit:
    """A visit at one revision, and what this reader's calendar entry says about it."""

    booking_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    sequence: int
    status: BookingStatus
    summary: str
    location: str | None
    url: str | None

    @classmethod
    def of(cls, booking: Booking, *, summary: str, location: str | None, url: str | None) -> Visit:
        """The booking as it is now."""
        return cls(booking.id, booking.starts_at, booking.ends_at, booking.sequence,
                   booking.status, summary, location, url)  # fmt: skip


def booking_calendar(visit: Visit, now: datetime) -> bytes:
    cancelled = visit.status is BookingStatus.CANCELLED
    calendar = _calendar("CANCEL" if cancelled else "PUBLISH")
    calendar.add_component(_event(visit, now))
    return bytes(calendar.to_ical())


def course_calendar(visits: list[Visit], now: datetime) -> bytes:
    """Every session of a course in one file. Each event has its booking's UID, so this file and
    the sessions' own files update the same entries; a cancelled session is STATUS:CANCELLED."""
    calendar = _calendar("PUBLISH")
    for visit in visits:
        calendar.add_component(_event(visit, now))
    return bytes(calendar.to_ical())


def _calendar(method: str) -> Calendar:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    return calendar


def _event(visit: Visit, now: datetime) -> Event:
    event = Event()
    event.add("uid", booking_uid(visit.booking_id))
    event.add("dtstamp", now)
    event.add("dtstart", visit.starts_at)
    event.add("dtend", visit.ends_at)
    event.add("sequence", visit.sequence)
    event.add("status", STATUS[visit.status])
    event.add("summary", visit.summary)
    if visit.location:
        event.add("location", visit.location)
    if visit.url:
        event.add("url", visit.url)
    return event


def visit_summary(mode: Mode, other_party: str) -> str:
    kind = "Home visit" if mode is Mode.HOME else "Video visit"
    return f"{kind} with {other_party}"
