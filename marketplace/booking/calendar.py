"""A booking as an iCalendar file (RFC 5545), built with the icalendar library.

Times are written in UTC, so a visit stays at its instant on both sides of a DST change. The
UID is stable per booking and SEQUENCE rises with each reschedule or cancellation. An email
carries an iTIP message (RFC 5546): METHOD:REQUEST for a new or moved visit, METHOD:CANCEL for a
cancelled one, from the platform as ORGANIZER to its reader as ATTENDEE, so mail clients update
the same calendar entry. A file downloaded from the API is published (METHOD:PUBLISH): a copy of
the visit as it is, to import, not a request to anyone.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from icalendar import Calendar, Event, vCalAddress

from marketplace.booking.models import Booking, BookingStatus
from marketplace.practitioners.models import Mode

PRODUCT_ID = "-//Practitioner marketplace//Bookings//EN"
PLATFORM_NAME = "Practitioner marketplace"
STATUS = {
    BookingStatus.CONFIRMED: "CONFIRMED",
    BookingStatus.PENDING: "TENTATIVE",
    BookingStatus.CANCELLED: "CANCELLED",
    BookingStatus.COMPLETED: "CONFIRMED",
    BookingStatus.NO_SHOW: "CONFIRMED",
}


@dataclass(frozen=True)
class Party:
    """Someone in a calendar entry: a name and the address calendars know them by."""

    name: str
    email: str

    def address(self, **params: str) -> vCalAddress:
        address = vCalAddress(f"mailto:{self.email}")
        address.params["cn"] = self.name
        address.params.update(params)
        return address


def platform_organizer(sender: str) -> Party:
    """The platform, by the address its emails come from (`Name <user@domain>` or `user@domain`)."""
    name, email = parseaddr(sender)
    return Party(name or PLATFORM_NAME, email)


def stand_in(name: str, sender: str) -> Party:
    """Another party of the visit, by name, at the platform's no-reply address: a patient may not
    see their practitioner's email address (nor a practitioner their patient's), and each
    ATTENDEE needs an address of its own, distinct from the ORGANIZER's."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return Party(name, f"no-reply@{domain}")


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
    url: str | None  # the meeting link
    page: str | None = None  # where to see or change the visit

    @classmethod
    def of(
        cls, booking: Booking, *, summary: str, location: str | None, url: str | None, page: str
    ) -> Visit:
        """The booking as it is now."""
        return cls(
            booking.id,
            booking.starts_at,
            booking.ends_at,
            booking.sequence,
            booking.status,
            summary,
            location,
            url,
            page,
        )


def itip_method(visit: Visit) -> str:
    """What an email's calendar file asks of the reader's calendar."""
    return "CANCEL" if visit.status is BookingStatus.CANCELLED else "REQUEST"


def invitation_calendar(
    visit: Visit, organizer: Party, attendees: Sequence[Party], now: datetime
) -> bytes:
    """The visit as an iTIP message to go with an email: a new or moved visit to put in the
    calendar, or a cancelled one to take out."""
    calendar = _calendar(itip_method(visit))
    event = _event(visit, now)
    event.add("organizer", organizer.address())
    for attendee in attendees:
        # The visit is booked: nobody is asked to answer, so clients need not offer to.
        event.add(
            "attendee",
            attendee.address(
                cutype="INDIVIDUAL", role="REQ-PARTICIPANT", partstat="ACCEPTED", rsvp="FALSE"
            ),
        )
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def booking_calendar(visit: Visit, organizer: Party, now: datetime) -> bytes:
    """The visit as a file to download and import (a cancelled one is STATUS:CANCELLED)."""
    return course_calendar([visit], organizer, now)


def course_calendar(visits: list[Visit], organizer: Party, now: datetime) -> bytes:
    """Every session of a course in one file. Each event has its booking's UID, so this file and
    the sessions' own files update the same entries; a cancelled session is STATUS:CANCELLED."""
    calendar = _calendar("PUBLISH")
    for visit in visits:
        event = _event(visit, now)
        event.add("organizer", organizer.address())
        calendar.add_component(event)
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
    # Many calendars show LOCATION and DESCRIPTION but not URL: a video visit's link is in all.
    location = visit.location or visit.url
    if location:
        event.add("location", location)
    if visit.url:
        event.add("url", visit.url)
    description = [
        *([f"Join the video visit: {visit.url}"] if visit.url else []),
        *([f"See or change the visit: {visit.page}"] if visit.page else []),
    ]
    if description:
        event.add("description", "\n".join(description))
    return event


def visit_summary(mode: Mode, other_party: str) -> str:
    kind = "Home visit" if mode is Mode.HOME else "Video visit"
    return f"{kind} with {other_party}"
