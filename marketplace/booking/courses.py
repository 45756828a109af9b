"""Courses: after an assessment, weekly follow-ups on the same weekday and local time, booked
in one request and one transaction: every session or none. A week that is not free is named
with the nearest free time that week, and nothing is booked. Sessions are ordinary bookings
(reminders, calendar files, cancel and reschedule one); the rest of a course can be cancelled
at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.acting_for import acts_for, patient_for
from marketplace.accounts.models import Role, User
from marketplace.booking import bookings
from marketplace.booking.models import TIME_HOLDING, Booking, Course, CourseSession
from marketplace.booking.slots import free_slots_of, visit_type_for
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationFailed
from marketplace.geo.geocoding import Geocoder
from marketplace.practitioners.listing import get_listed_practitioner
from marketplace.practitioners.models import Mode, Practitioner, VisitType
from marketplace.practitioners.service import find_profile

MAX_WEEKS = 26


class CourseClashes(Conflict):
    code = "course_clashes"
    message = "Some weeks are not free, so nothing was booked: see the weeks and nearest times."


@dataclass(frozen=True)
class CourseInput:
    first_start: datetime
    weeks: int
    mode: Mode
    practitioner_id: uuid.UUID | None = None  # when a patient (or their carer) books
    patient_id: uuid.UUID | None = None  # when a practitioner or a carer books
    address: str | None = None
    postcode: str | None = None


def book_course(
    session: Session,
    actor: User,
    data: CourseInput,
    *,
    now: datetime,
    today: date,
    geocoder: Geocoder,
    policy: bookings.BookingPolicy,
) -> Course:
    patient_id, practitioner_id = _parties(session, actor, data)
    bookings.lock_diaries(session, practitioner_id, patient_id)
    practitioner = get_listed_practitioner(session, practitioner_id, today)
    patient = session.get(User, patient_id)
    if patient is None or patient.role is not Role.PATIENT or not patient.is_active:
        raise NotYourPatient()
    if visit_type_for(session, patient.id, practitioner.id, data.first_start) is not (
        VisitType.FOLLOW_UP
    ):
        raise bookings.AssessmentRequired()
    starts = weekly_starts(data.first_start, data.weeks, ZoneInfo(practitioner.timezone))
    clashes = [
        clash
        for week, start in enumerate(starts, start=1)
        if (clash := _clash(session, practitioner, patient.id, week, start, data.mode, now))
    ]
    if clashes:
        raise CourseClashes(details={"clashes": clashes})
    course = Course(
        id=uuid.uuid4(),
        practitioner_id=practitioner.id,
        patient_id=patient.id,
        created_by_id=actor.id,
    )
    session.add(course)
    for start in starts:
        visit = bookings.BookingInput(
            practitioner.id,
            start,
            data.mode,
            address=data.address,
            postcode=data.postcode,
            visit_type=VisitType.FOLLOW_UP,
        )
        booking = bookings.book_visit(
            session,
            patient,
            practitioner,
            visit,
            now=now,
            geocoder=geocoder,
            policy=policy,
            booked_by=actor,
        )
        session.add(CourseSession(course_id=course.id, booking_id=booking.id))
    session.flush()
    return course


def weekly_starts(first: datetime, weeks: int, zone: ZoneInfo) -> list[datetime]:
    """The same weekday and local time each week (across a clock change too)."""
    local = first.astimezone(zone)
    return [(local + timedelta(weeks=week)).astimezone(UTC) for week in range(weeks)]


class NotYourPatient(NotFound):
    code = "not_your_patient"
    message = "No such patient of yours."


def _has_booked(session: Session, practitioner_id: uuid.UUID, patient_id: uuid.UUID) -> bool:
    """Whether the patient has (or had) any booking with the practitioner."""
    found = session.scalar(
        select(Booking.id)
        .where(Booking.practitioner_id == practitioner_id, Booking.patient_id == patient_id)
        .limit(1)
    )
    return found is not None


def _parties(session: Session, actor: User, data: CourseInput) -> tuple[uuid.UUID, uuid.UUID]:
    if actor.role is Role.PATIENT:
        if data.practitioner_id is None:
            raise ValidationFailed.for_field("practitioner_id", "Say which practitioner.")
        return patient_for(session, actor, data.patient_id).id, data.practitioner_id
    if actor.role is Role.PRACTITIONER:
        profile = find_profile(session, actor)
        if profile is None:
            raise Forbidden("You have no practitioner profile.")
        if data.patient_id is None:
            raise ValidationFailed.for_field("patient_id", "Say which patient.")
        # Before anything that tells a patient's account exists (an assessment still needed,
        # a clash): anyone the practitioner has never had a booking with is a 404 like an id
        # that belongs to no one, so the endpoint is no oracle for who is a patient here.
        if not _has_booked(session, profile.id, data.patient_id):
            raise NotYourPatient()
        return data.patient_id, profile.id
    raise Forbidden("A course is booked by its patient, their carer or its practitioner.")


def _clash(
    session: Session,
    practitioner: Practitioner,
    patient_id: uuid.UUID,
    week: int,
    start: datetime,
    mode: Mode,
    now: datetime,
) -> dict[str, Any] | None:
    """None if the week's session is free; else the week, its time and the nearest free time
    that week (Monday to Sunday, the practitioner's time), or None if there is none."""
    if bookings.is_bookable(
        session, practitioner, patient_id, start, mode, now, VisitType.FOLLOW_UP
    ):
        return None
    zone = ZoneInfo(practitioner.timezone)
    local = start.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0)
    week_start, week_end = monday.astimezone(UTC), (monday + timedelta(days=7)).astimezone(UTC)
    patient_busy = bookings.patient_held_times(session, patient_id, week_start, week_end)
    free = [
        slot.start
        for slot in free_slots_of(
            session, practitioner, week_start, week_end, now, mode.value, VisitType.FOLLOW_UP
        )
        if not any(
            busy_start < slot.end and busy_end > slot.start for busy_start, busy_end in patient_busy
        )
    ]
    nearest = min(free, key=lambda other: abs(other - start), default=None)
    return {
        "week": week,
        "start": start.isoformat(),
        "nearest_free": nearest.isoformat() if nearest else None,
    }


def visible_course(session: Session, viewer: User, course_id: uuid.UUID) -> Course:
    course = session.get(Course, course_id)
    if course is None:
        raise NotFound("No such course.")
    if viewer.role is Role.ADMIN or acts_for(session, viewer, course.patient_id):
        return course
    profile = find_profile(session, viewer)
    if profile is not None and profile.id == course.practitioner_id:
        return course
    raise NotFound("No such course.")


def sessions_of(session: Session, course: Course) -> list[Booking]:
    return list(
        session.scalars(
            select(Booking)
            .join(CourseSession, CourseSession.booking_id == Booking.id)
            .where(CourseSession.course_id == course.id)
            .order_by(Booking.starts_at)
        )
    )


def cancel_rest(
    session: Session,
    actor: User,
    course_id: uuid.UUID,
    reason: str | None,
    *,
    now: datetime,
    policy: bookings.BookingPolicy,
) -> Course:
    """Cancel every session of the course still ahead (each an ordinary cancellation)."""
    course = visible_course(session, actor, course_id)
    for booking in sessions_of(session, course):
        if booking.status in TIME_HOLDING and booking.starts_at > now:
            bookings.cancel_booking(session, actor, booking.id, reason, now=now, policy=policy)
    return course
