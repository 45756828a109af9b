"""Visit types: a patient's first visit with a practitioner is an assessment (its own length and
price); later ones are follow-ups; a follow-up with no assessment is refused. Slots, matching
and claims use the right length."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from marketplace.accounts.models import User
from marketplace.booking import bookings
from marketplace.booking.models import BookingStatus
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.matching.service import match_practitioners
from marketplace.practitioners.models import Practitioner, VisitType
from tests.support.accounts import log_in_as
from tests.support.care_requests import claim, open_request, request_at
from tests.support.factories import book, make_practitioner, make_user, weekday_at

ASSESSMENT, SESSION = timedelta(minutes=90), timedelta(minutes=60)


def assessing(db: Session, **profile: Any) -> Practitioner:
    """90-minute assessments at £95, 60-minute sessions at £75."""
    practitioner = make_practitioner(db, **profile)
    practitioner.assessment_minutes, practitioner.assessment_price_pence = 90, 9500
    db.flush()
    return practitioner


def length(visit: dict[str, str]) -> timedelta:
    return datetime.fromisoformat(visit["end"]) - datetime.fromisoformat(visit["start"])


def post_booking(
    client: FlaskClient, practitioner: Practitioner, hour: int, **extra: object
) -> TestResponse:
    return client.post(
        "/api/v1/bookings",
        json={
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(hour).isoformat(),
            "mode": "video",
            **extra,
        },
    )


def test_the_first_visit_is_an_assessment_then_follow_ups(client: FlaskClient, db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    log_in_as(client, patient.email)
    first = post_booking(client, practitioner, 9)
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["visit_type"] == "assessment"
    assert length(first.get_json()) == ASSESSMENT
    second = post_booking(client, practitioner, 14)
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["visit_type"] == "follow_up"
    assert length(second.get_json()) == SESSION


def test_a_follow_up_needs_an_assessment_first(client: FlaskClient, db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    log_in_as(client, patient.email)
    refused = post_booking(client, practitioner, 9, visit_type="follow_up")
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "assessment_required"
    # A cancelled assessment does not count either.
    assessment = book(db, patient, practitioner, weekday_at(11))
    assessment.status = BookingStatus.CANCELLED
    db.flush()
    assert post_booking(client, practitioner, 14).get_json()["visit_type"] == "assessment"


def test_slots_are_as_long_as_the_callers_next_visit(client: FlaskClient, db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    url = f"/api/v1/practitioners/{practitioner.id}/slots?mode=video"

    def lengths(query: str = "") -> set[timedelta]:
        return {length(item) for item in client.get(url + query).get_json()["items"]}

    assert lengths() == {ASSESSMENT}  # anyone new
    assert lengths("&visit_type=follow_up") == {SESSION}
    assessment = book(db, patient, practitioner, weekday_at(9, days_ahead=10))  # held
    log_in_as(client, patient.email)
    assert lengths() == {ASSESSMENT}  # until the assessment is over
    after = quote(assessment.ends_at.isoformat())
    assert lengths(f"&from={after}") == {SESSION}


def test_the_profile_shows_both_visits_and_prices(client: FlaskClient, db: Session) -> None:
    practitioner = assessing(db)
    profile = client.get(f"/api/v1/practitioners/{practitioner.id}").get_json()
    assert (profile["assessment_minutes"], profile["assessment_price_pence"]) == (90, 9500)
    assert (profile["session_minutes"], profile["price_pence"]) == (60, 7500)


def test_matching_offers_assessment_slots_to_a_new_patient(db: Session) -> None:
    practitioner = assessing(db, specialties=["parkinsons"])
    request = request_at(db)
    now = utcnow()
    [match] = match_practitioners(db, request, now=now, today=business_today(now))
    assert {slot.end - slot.start for slot in match.next_slots} == {ASSESSMENT}
    patient = db.get_one(User, request.patient_id)
    assessment = book(db, patient, practitioner, weekday_at(9, days_ahead=12))
    # Booked, but not over when the window opens: the patient's next visit may still be one.
    [booked] = match_practitioners(db, request, now=now, today=business_today(now))
    assert {slot.end - slot.start for slot in booked.next_slots} == {ASSESSMENT}
    request.earliest = assessment.ends_at
    request.latest = assessment.ends_at + timedelta(days=7)
    [after] = match_practitioners(db, request, now=now, today=business_today(now))
    assert {slot.end - slot.start for slot in after.next_slots} == {SESSION}


def test_booking_types_are_stored(db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    first = book(db, patient, practitioner, weekday_at(9))
    second = book(db, patient, practitioner, weekday_at(14))
    assert (first.visit_type, second.visit_type) == (VisitType.ASSESSMENT, VisitType.FOLLOW_UP)
    assert first.ends_at - first.starts_at == ASSESSMENT


def test_a_claimed_request_books_an_assessment_of_the_right_length(db: Session) -> None:
    practitioner = assessing(db)
    request = open_request(db, weekday_at(10))
    booking = claim(db, practitioner, request, weekday_at(10))
    assert booking.visit_type is VisitType.ASSESSMENT
    assert booking.ends_at - booking.starts_at == ASSESSMENT


def test_a_follow_up_starts_only_once_the_assessment_is_over(db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    assessment = book(db, patient, practitioner, weekday_at(14, days_ahead=8))
    that_morning = weekday_at(9, days_ahead=8)
    with pytest.raises(bookings.AssessmentRequired):
        book(db, patient, practitioner, that_morning, visit_type=VisitType.FOLLOW_UP)
    # Left to choose, a visit before the assessment is one itself (a reassessment is allowed).
    earlier = book(db, patient, practitioner, that_morning)
    assert (earlier.visit_type, earlier.ends_at - earlier.starts_at) == (
        VisitType.ASSESSMENT,
        ASSESSMENT,
    )
    after = book(db, patient, practitioner, assessment.ends_at + timedelta(minutes=30))
    assert after.visit_type is VisitType.FOLLOW_UP


def test_a_reschedule_keeps_follow_ups_after_the_assessment(db: Session) -> None:
    practitioner, patient = assessing(db), make_user(db)
    assessment = book(db, patient, practitioner, weekday_at(9, days_ahead=8))
    follow_up = book(db, patient, practitioner, weekday_at(14, days_ahead=8))
    assert follow_up.visit_type is VisitType.FOLLOW_UP
    with pytest.raises(bookings.AssessmentRequired):  # the follow-up before the assessment
        bookings.reschedule_booking(
            db, patient, follow_up.id, weekday_at(9, days_ahead=7), now=utcnow()
        )
    with pytest.raises(bookings.AssessmentRequired):  # the assessment after its follow-up
        bookings.reschedule_booking(
            db, patient, assessment.id, weekday_at(9, days_ahead=15), now=utcnow()
        )
    assert follow_up.starts_at == weekday_at(14, days_ahead=8)
    assert assessment.starts_at == weekday_at(9, days_ahead=8)
    moved = bookings.reschedule_booking(
        db, patient, follow_up.id, weekday_at(15, days_ahead=8), now=utcnow()
    )
    assert moved.starts_at == weekday_at(15, days_ahead=8)
