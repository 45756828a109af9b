"""Claiming open requests: a fitting practitioner, a start inside the window, first claim wins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.booking import bookings
from marketplace.booking.models import BookingStatus, RequestStatus
from marketplace.errors import ValidationFailed
from marketplace.notifications.models import Notification
from marketplace.practitioners.models import Mode
from tests.support.accounts import log_in_as
from tests.support.care_requests import claim, open_request
from tests.support.factories import make_practitioner, weekday_at


def test_the_first_fitting_claim_books_the_request(db: Session) -> None:
    start = weekday_at(10)
    request = open_request(db, start)
    booking = claim(db, make_practitioner(db), request, start)
    assert (booking.status, booking.request_id) == (BookingStatus.CONFIRMED, request.id)
    assert request.status is RequestStatus.BOOKED
    told = db.scalars(select(Notification.user_id).where(Notification.subject_id == booking.id))
    assert request.patient_id in set(told)
    with pytest.raises(bookings.RequestTaken):
        claim(db, make_practitioner(db), request, start + timedelta(hours=1))


def test_a_start_outside_the_window_is_refused(db: Session) -> None:
    start = weekday_at(10)
    request = open_request(db, start)
    with pytest.raises(ValidationFailed):
        claim(db, make_practitioner(db), request, start + timedelta(hours=3))
    assert request.status is RequestStatus.OPEN


def test_a_practitioner_who_does_not_fit_cannot_claim(db: Session) -> None:
    start = weekday_at(10)
    request = open_request(db, start, specialty="chronic_pain")
    with pytest.raises(ValidationFailed):
        claim(db, make_practitioner(db), request, start)
    far = open_request(
        db,
        start,
        mode=Mode.HOME,
        specialty="stroke",
        postcode="N1 9GU",
        latitude=51.5362,
        longitude=-0.1030,
        address="1 Far Street",
    )
    with pytest.raises(ValidationFailed):
        claim(db, make_practitioner(db, travel_radius_km=2), far, start)


def test_claim_endpoint(client: FlaskClient, db: Session) -> None:
    start = weekday_at(10)
    request = open_request(db, start)
    practitioner = make_practitioner(db)
    log_in_as(client, practitioner.user.email)
    url = f"/api/v1/requests/{request.id}/claim"
    first = client.post(url, json={"start": start.isoformat()})
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["request_id"] == str(request.id)
    again = client.post(url, json={"start": start.isoformat()})
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "request_not_open")
    patient = db.get(User, request.patient_id)
    assert patient is not None
    log_in_as(client, patient.email)
    assert client.post(url, json={"start": start.isoformat()}).status_code == 403
