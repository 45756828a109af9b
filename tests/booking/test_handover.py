"""The handover to the practitioner: a home request carries the address to visit, and the
practitioner a request is booked with reads it (address, notes) and the patient's phone while
the visit is confirmed; not before it is booked, nor once it is cancelled."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.audit.models import AuditEntry
from marketplace.booking.models import CareRequest
from tests.support.accounts import log_in_as, logged_in
from tests.support.factories import make_practitioner, make_user, weekday_at

ADDRESS = "Flat 3, 12 Riverside Court"
NOTES = "Left-sided weakness after a stroke in May; walks with a stick."
PHONE = "+447700900123"


def request_body(**changes: Any) -> dict[str, Any]:
    return {
        "mode": "home",
        "specialty": "stroke",
        "postcode": "SW1A 2AA",
        "address": ADDRESS,
        "earliest": weekday_at(9).isoformat(),
        "latest": weekday_at(17).isoformat(),
        "notes": NOTES,
        **changes,
    }


def patient_with_request(client: FlaskClient, db: Session) -> tuple[User, str]:
    """A patient (with a phone number) and their open home request."""
    account = logged_in(client, "patient")
    patient = db.get_one(User, uuid.UUID(account["id"]))
    patient.phone = PHONE
    db.flush()
    created = client.post("/api/v1/requests", json=request_body())
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["address"] == ADDRESS
    return patient, created.get_json()["id"]


def claimed(client: FlaskClient, db: Session) -> tuple[User, Any, str, str]:
    """A patient's home request claimed by a practitioner, who stays logged in on `client`."""
    patient, request_id = patient_with_request(client, db)
    practitioner = make_practitioner(db, specialties=["stroke"])
    log_in_as(client, practitioner.user.email)
    claim = client.post(
        f"/api/v1/requests/{request_id}/claim", json={"start": weekday_at(10).isoformat()}
    )
    assert claim.status_code == 201, claim.get_json()
    return patient, practitioner, request_id, claim.get_json()["id"]


def test_a_home_request_needs_the_address_to_visit(client: FlaskClient) -> None:
    logged_in(client, "patient")
    missing = client.post("/api/v1/requests", json=request_body(address=None))
    assert missing.status_code == 422
    assert "address" in missing.get_json()["error"]["details"]["fields"]
    video = client.post("/api/v1/requests", json=request_body(mode="video"))
    assert video.status_code == 201
    assert video.get_json()["address"] is None  # a video call keeps no address


def test_a_claimed_home_visit_arrives_with_its_address(client: FlaskClient, db: Session) -> None:
    patient, _, _, booking_id = claimed(client, db)
    practitioners_view = client.get(f"/api/v1/bookings/{booking_id}").get_json()
    assert (practitioners_view["address"], practitioners_view["postcode"]) == (ADDRESS, "SW1A 2AA")
    assert (practitioners_view["patient_name"], practitioners_view["patient_phone"]) == (
        "Pat Doe",
        PHONE,
    )
    log_in_as(client, patient.email)
    patients_view = client.get(f"/api/v1/bookings/{booking_id}").get_json()
    assert patients_view["address"] == ADDRESS


def test_the_booked_practitioner_reads_the_request_while_the_visit_is_confirmed(
    client: FlaskClient, db: Session
) -> None:
    patient, request_id = patient_with_request(client, db)
    practitioner = make_practitioner(db, specialties=["stroke"])
    log_in_as(client, practitioner.user.email)
    url = f"/api/v1/requests/{request_id}"
    assert client.get(url).status_code == 404  # before booking: the feed's area only
    feed = client.get("/api/v1/practitioners/me/open-requests").get_json()
    assert request_id in str(feed)
    assert NOTES not in str(feed)
    assert ADDRESS not in str(feed)
    claim = client.post(f"{url}/claim", json={"start": weekday_at(10).isoformat()})
    booking_id = claim.get_json()["id"]
    seen = client.get(url)
    assert seen.status_code == 200
    assert (seen.get_json()["notes"], seen.get_json()["address"]) == (NOTES, ADDRESS)
    other = make_practitioner(db, specialties=["stroke"])
    log_in_as(client, other.user.email)
    assert client.get(url).status_code == 404  # another practitioner never
    log_in_as(client, patient.email)
    assert client.post(f"/api/v1/bookings/{booking_id}/cancel", json={}).status_code == 200
    log_in_as(client, practitioner.user.email)
    assert client.get(url).status_code == 404  # cancelled: no longer theirs to read
    after = client.get(f"/api/v1/bookings/{booking_id}").get_json()
    assert (after["address"], after["patient_phone"], after["patient_name"]) == (None, None, None)


def test_admin_reads_of_the_request_stay_audited(client: FlaskClient, db: Session) -> None:
    _, _, request_id, _ = claimed(client, db)
    log_in_as(client, make_user(db, Role.ADMIN).email)
    assert client.get(f"/api/v1/requests/{request_id}").get_json()["notes"] == NOTES
    audited = db.scalars(
        select(AuditEntry.action).where(AuditEntry.subject_id == uuid.UUID(request_id))
    ).all()
    assert audited == ["care_request.viewed"]


def test_a_patient_booking_from_their_request_may_leave_the_address_to_it(
    client: FlaskClient, db: Session
) -> None:
    _, request_id = patient_with_request(client, db)
    practitioner = make_practitioner(db, specialties=["stroke"])
    booked = client.post(
        "/api/v1/bookings",
        json={
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(10).isoformat(),
            "mode": "home",
            "request_id": request_id,
        },
    )
    assert booked.status_code == 201, booked.get_json()
    assert (booked.get_json()["address"], booked.get_json()["postcode"]) == (ADDRESS, "SW1A 2AA")


def test_a_home_request_from_before_addresses_is_not_handed_over(
    client: FlaskClient, db: Session
) -> None:
    _, request_id = patient_with_request(client, db)
    db.get_one(CareRequest, uuid.UUID(request_id)).address = None  # as made before migration 0017
    db.flush()
    practitioner = make_practitioner(db, specialties=["stroke"])
    log_in_as(client, practitioner.user.email)
    assert request_id not in str(client.get("/api/v1/practitioners/me/open-requests").get_json())
    claim = client.post(
        f"/api/v1/requests/{request_id}/claim", json={"start": weekday_at(10).isoformat()}
    )
    assert (claim.status_code, claim.get_json()["error"]["code"]) == (409, "request_needs_address")
