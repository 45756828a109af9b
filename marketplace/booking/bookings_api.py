"""Booking endpoints: book, list, read, cancel, reschedule, complete, no-show, calendar file."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app
from sqlalchemy.orm import Session

from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import Role, User
from marketplace.booking import bookings, courses
from marketplace.booking.calendar import (
    Party,
    Visit,
    booking_calendar,
    course_calendar,
    platform_organizer,
    visit_summary,
)
from marketplace.booking.models import Booking, BookingStatus, Course
from marketplace.booking.presenters import booking_policy, on_patient_side, shown, shown_all
from marketplace.booking.schemas import (
    BookingInputSchema,
    BookingListQuerySchema,
    BookingListSchema,
    BookingSchema,
    CancelInputSchema,
    CourseInputSchema,
    CourseSchema,
    IdempotencyHeaderSchema,
    RescheduleInputSchema,
)
from marketplace.clock import business_today
from marketplace.db import request_session, utcnow
from marketplace.errors import ErrorSchema
from marketplace.geo.geocoding import geocoder_from_config
from marketplace.links import visit_page
from marketplace.practitioners.models import Practitioner
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("bookings", __name__, url_prefix="/api/v1", description="Bookings")


@blp.route("/bookings", methods=["POST"])
@authenticated(Role.PATIENT)
@blp.arguments(IdempotencyHeaderSchema, location="headers", as_kwargs=True)
@blp.arguments(BookingInputSchema)
@blp.response(201, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="`slot_unavailable` or `patient_busy`")
def create_booking(body: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """Book a free slot at once. Send an `Idempotency-Key` header to retry safely: the same key
    returns the first booking."""
    now = utcnow()
    booking, _ = bookings.create_booking(
        request_session(),
        current_account(),
        bookings.BookingInput(**body),
        now=now,
        today=business_today(now),
        geocoder=geocoder_from_config(current_app.config),
        idempotency_key=idempotency_key,
        policy=booking_policy(),
    )
    return shown(booking)


@blp.route("/bookings", methods=["GET"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.arguments(BookingListQuerySchema, location="query")
@blp.response(200, BookingListSchema)
def list_bookings(query: dict[str, Any]) -> dict[str, Any]:
    """Your bookings, soonest first (`status` to filter)."""
    page = bookings.own_bookings(
        request_session(), current_account(), query["status"], query["limit"], query["cursor"]
    )
    return {"items": shown_all(page.items), "next_cursor": page.next_cursor}


@blp.route("/bookings/<uuid:booking_id>", methods=["GET"])
@authenticated()
@blp.response(200, BookingSchema)
@blp.alt_response(404, schema=ErrorSchema, description="Not found or not yours")
def get_booking(booking_id: uuid.UUID) -> dict[str, Any]:
    """A booking, for its patient, its practitioner or an admin."""
    return shown(bookings.read_booking(request_session(), current_account(), booking_id))


@blp.route("/bookings/<uuid:booking_id>/cancel", methods=["POST"])
@authenticated()
@blp.arguments(CancelInputSchema)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Already cancelled or over")
def cancel_booking(body: dict[str, Any], booking_id: uuid.UUID) -> dict[str, Any]:
    """Cancel: the time is free again at once (late when close to the start)."""
    booking = bookings.cancel_booking(
        request_session(),
        current_account(),
        booking_id,
        body["reason"],
        now=utcnow(),
        policy=booking_policy(),
    )
    return shown(booking)


@blp.route("/bookings/<uuid:booking_id>/reschedule", methods=["POST"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.arguments(RescheduleInputSchema)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="The new time is taken (old time kept)")
def reschedule_booking(body: dict[str, Any], booking_id: uuid.UUID) -> dict[str, Any]:
    """Move the visit to another free slot."""
    booking = bookings.reschedule_booking(
        request_session(),
        current_account(),
        booking_id,
        body["start"],
        now=utcnow(),
        policy=booking_policy(),
    )
    return shown(booking)


def _record(booking_id: uuid.UUID, outcome: BookingStatus) -> dict[str, Any]:
    booking = bookings.record_outcome(
        request_session(),
        current_account(),
        booking_id,
        outcome,
        now=utcnow(),
        policy=booking_policy(),
    )
    return shown(booking)


@blp.route("/bookings/<uuid:booking_id>/complete", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="`visit_not_over`, or not confirmed")
def complete_booking(booking_id: uuid.UUID) -> dict[str, Any]:
    """Mark a visit completed once its time is over."""
    return _record(booking_id, BookingStatus.COMPLETED)


@blp.route("/bookings/<uuid:booking_id>/no-show", methods=["POST"])
@authenticated(Role.PRACTITIONER)
@blp.response(200, BookingSchema)
@blp.alt_response(409, schema=ErrorSchema, description="`visit_not_over`, or not confirmed")
def record_no_show(booking_id: uuid.UUID) -> dict[str, Any]:
    """Mark a visit the patient missed, once the grace period after its start has passed."""
    return _record(booking_id, BookingStatus.NO_SHOW)


def _other_party(session: Session, booking: Booking) -> str:
    if on_patient_side(booking):
        practitioner = session.get(Practitioner, booking.practitioner_id)
        return practitioner.user.full_name if practitioner else "your practitioner"
    patient = session.get(User, booking.patient_id)
    return patient.full_name if patient else "your patient"


@blp.route("/bookings/<uuid:booking_id>/calendar.ics", methods=["GET"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.response(200, content_type="text/calendar")
@blp.alt_response(404, schema=ErrorSchema, description="Not found or not yours")
def get_booking_calendar(booking_id: uuid.UUID) -> Response:
    """The visit as an iCalendar file to import (STATUS:CANCELLED once cancelled)."""
    booking = bookings.visible_booking(request_session(), current_account(), booking_id)
    body = booking_calendar(_calendar_visit(booking), _organizer(), utcnow())
    return _calendar_file(body, f"booking-{booking.id}.ics")


def _calendar_visit(booking: Booking) -> Visit:
    """The booking's calendar entry as the viewer may see it."""
    view = shown(booking)
    summary = visit_summary(booking.mode, _other_party(request_session(), booking))
    return Visit.of(
        booking,
        summary=summary,
        location=view["address"],
        url=view["video_url"],
        page=visit_page(booking.id),
    )


def _organizer() -> Party:
    return platform_organizer(current_app.config["MAIL_DEFAULT_SENDER"])


def _calendar_file(body: bytes, filename: str) -> Response:
    return Response(
        body,
        content_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def course_view(course: Course) -> dict[str, Any]:
    sessions = courses.sessions_of(request_session(), course)
    return {
        "id": course.id,
        "practitioner_id": course.practitioner_id,
        "patient_id": course.patient_id,
        "created_by_id": course.created_by_id,
        "sessions": shown_all(sessions),
    }


@blp.route("/courses", methods=["POST"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.arguments(CourseInputSchema)
@blp.response(201, CourseSchema)
@blp.alt_response(
    409,
    schema=ErrorSchema,
    description="`course_clashes` (each week with its nearest free time; nothing "
    "booked) or `assessment_required`",
)
def create_course(body: dict[str, Any]) -> dict[str, Any]:
    """Book weekly follow-ups after an assessment, all or none."""
    now = utcnow()
    course = courses.book_course(
        request_session(),
        current_account(),
        courses.CourseInput(first_start=body.pop("start"), **body),
        now=now,
        today=business_today(now),
        geocoder=geocoder_from_config(current_app.config),
        policy=booking_policy(),
    )
    return course_view(course)


@blp.route("/courses/<uuid:course_id>", methods=["GET"])
@authenticated()
@blp.response(200, CourseSchema)
def get_course(course_id: uuid.UUID) -> dict[str, Any]:
    """A course and its sessions (its patient, its practitioner, admins)."""
    return course_view(courses.visible_course(request_session(), current_account(), course_id))


@blp.route("/courses/<uuid:course_id>/cancel", methods=["POST"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.arguments(CancelInputSchema)
@blp.response(200, CourseSchema)
def cancel_course(body: dict[str, Any], course_id: uuid.UUID) -> dict[str, Any]:
    """Cancel every session still ahead (cancel or move one with the booking endpoints)."""
    course = courses.cancel_rest(
        request_session(),
        current_account(),
        course_id,
        body["reason"],
        now=utcnow(),
        policy=booking_policy(),
    )
    return course_view(course)


@blp.route("/courses/<uuid:course_id>/calendar.ics", methods=["GET"])
@authenticated(Role.PATIENT, Role.PRACTITIONER)
@blp.response(200, content_type="text/calendar")
@blp.alt_response(404, schema=ErrorSchema, description="Not found or not yours")
def get_course_calendar(course_id: uuid.UUID) -> Response:
    """Every session of the course in one iCalendar file (cancelled ones marked so)."""
    session = request_session()
    course = courses.visible_course(session, current_account(), course_id)
    visits = [_calendar_visit(booking) for booking in courses.sessions_of(session, course)]
    body = course_calendar(visits, _organizer(), utcnow())
    return _calendar_file(body, f"course-{course.id}.ics")
