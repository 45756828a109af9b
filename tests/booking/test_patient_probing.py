"""No endpoint that takes a `patient_id` tells whether an account is a patient's: a random id
and the id of a real patient the caller may not act for get the same status and body, whoever
asks (a patient, a practitioner or nobody)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.practitioners.models import Practitioner
from tests.support.accounts import log_in_as
from tests.support.factories import book, make_practitioner, make_user, weekday_at

Ask = Callable[[FlaskClient, Practitioner, str], Any]


def course(client: FlaskClient, practitioner: Practitioner, patient_id: str) -> Any:
    return client.post(
        "/api/v1/courses",
        json={
            "patient_id": patient_id,
            "start": weekday_at(10, days_ahead=8).isoformat(),
            "weeks": 4,
            "mode": "video",
        },
    )


def course_for_patient(client: FlaskClient, practitioner: Practitioner, patient_id: str) -> Any:
    return client.post(
        "/api/v1/courses",
        json={
            "practitioner_id": str(practitioner.id),
            "patient_id": patient_id,
            "start": weekday_at(10, days_ahead=8).isoformat(),
            "weeks": 4,
            "mode": "video",
        },
    )


def care_request(client: FlaskClient, practitioner: Practitioner, patient_id: str) -> Any:
    return client.post(
        "/api/v1/requests",
        json={
            "patient_id": patient_id,
            "mode": "home",
            "postcode": "SW1A 2AA",
            "address": "1 Test Street",
            "specialty": "stroke",
            "earliest": weekday_at(9).isoformat(),
            "latest": weekday_at(17, days_ahead=10).isoformat(),
        },
    )


def booking(client: FlaskClient, practitioner: Practitioner, patient_id: str) -> Any:
    return client.post(
        "/api/v1/bookings",
        json={
            "practitioner_id": str(practitioner.id),
            "patient_id": patient_id,
            "start": weekday_at(10).isoformat(),
            "mode": "video",
        },
    )


def slots(client: FlaskClient, practitioner: Practitioner, patient_id: str) -> Any:
    return client.get(f"/api/v1/practitioners/{practitioner.id}/slots?patient_id={patient_id}")


CASES = [
    ("practitioner", course),
    ("patient", course_for_patient),
    ("patient", care_request),
    ("patient", booking),
    ("practitioner", booking),
    ("patient", slots),
    ("practitioner", slots),
    ("anonymous", slots),
]


@pytest.mark.parametrize(("caller", "ask"), CASES, ids=[f"{c}-{a.__name__}" for c, a in CASES])
def test_a_real_patient_looks_like_no_one(
    client: FlaskClient, db: Session, caller: str, ask: Ask
) -> None:
    practitioner = make_practitioner(db)
    stranger = make_user(db, Role.PATIENT)  # a real patient, nothing to do with the caller
    if caller == "practitioner":
        log_in_as(client, practitioner.user.email)
    elif caller == "patient":
        log_in_as(client, make_user(db, Role.PATIENT).email)
    unknown = ask(client, practitioner, str(uuid.uuid4()))
    real = ask(client, practitioner, str(stranger.id))
    assert unknown.status_code in (403, 404), unknown.get_json()
    assert (real.status_code, real.get_json()) == (unknown.status_code, unknown.get_json())


def test_a_practitioner_still_hears_when_their_patient_needs_an_assessment(
    client: FlaskClient, db: Session
) -> None:
    """A patient the practitioner has a booking with is theirs: the real reason is given."""
    practitioner, patient = make_practitioner(db), make_user(db, Role.PATIENT)
    book(db, patient, practitioner, weekday_at(10, days_ahead=30))  # the assessment, after
    log_in_as(client, practitioner.user.email)
    refused = course(client, practitioner, str(patient.id))
    assert refused.status_code == 409, refused.get_json()
    assert refused.get_json()["error"]["code"] == "assessment_required"
