"""UK GDPR: the export holds everything about the caller and nobody else; erasure removes the
personal data, cancels what is ahead (telling the other party), keeps ids and times."""

from __future__ import annotations

import io
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import AccessToken, Role, User
from marketplace.audit.models import AuditEntry
from marketplace.booking.models import Booking, BookingStatus, CareRequest
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import (
    Evidence,
    ListingStatus,
    Mode,
    Practitioner,
    WeeklyRule,
)
from marketplace.reviews import service as reviews
from marketplace.reviews.models import Review
from tests.support.accounts import PASSWORD, log_in_as, login
from tests.support.evidence_files import pdf_file
from tests.support.factories import book, make_practitioner, make_user, past_visit, weekday_at
from tests.support.storage import Backend

NOTES = "Left-sided weakness after a stroke"
HOME = {"address": "12 Private Road, London", "postcode": "SW1A 1AA"}


def a_patient_with_history(db: Session) -> tuple[User, Practitioner, Booking, Booking]:
    """A patient with a request (with notes), a past home visit and a future one."""
    patient = make_user(db)
    patient.phone = "+447911123456"
    practitioner = make_practitioner(db)
    request = CareRequest(
        patient_id=patient.id,
        mode=Mode.HOME,
        specialty="stroke",
        postcode="SW1A 1AA",
        outcode="SW1A",
        latitude=51.50123,
        longitude=-0.14187,
        earliest=weekday_at(9),
        latest=weekday_at(17),
        notes=NOTES,
        address=HOME["address"],
    )
    db.add(request)
    db.flush()
    future = book(db, patient, practitioner, weekday_at(10), Mode.HOME, **HOME)
    past = past_visit(
        db,
        patient,
        practitioner,
        weekday_at(13),
        Mode.HOME,
        back=timedelta(days=30),
        address=HOME["address"],
        postcode=HOME["postcode"],
    )
    return patient, practitioner, future, past


class TestExport:
    def test_the_export_holds_everything_about_me_and_nothing_secret(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, _, future, _ = a_patient_with_history(db)
        other = make_user(db)
        log_in_as(client, patient.email)
        client.post("/api/v1/auth/tokens", json={"name": "laptop"})
        response = client.get("/api/v1/me/export")
        assert response.status_code == 200
        data = response.get_json()
        assert data["account"]["email"] == patient.email
        assert data["account"]["phone"] == "+447911123456"
        assert "password_hash" not in data["account"]
        assert data["care_requests"][0]["notes"] == NOTES
        assert data["care_requests"][0]["address"] == HOME["address"]
        assert {b["id"] for b in data["bookings"]} >= {str(future.id)}
        assert data["bookings"][0]["address"] == HOME["address"]
        assert any(message["template"] == "booking_confirmed" for message in data["messages"])
        assert {token["name"] for token in data["logins_and_tokens"]} >= {"laptop"}
        text = response.get_data(as_text=True)
        assert "token_hash" not in text
        assert other.email not in text

    def test_a_practitioners_export_has_no_patient_addresses(
        self, client: FlaskClient, db: Session
    ) -> None:
        _, practitioner, _, _ = a_patient_with_history(db)
        log_in_as(client, practitioner.user.email)
        data = client.get("/api/v1/me/export").get_json()
        assert data["practitioner"]["credentials"][0]["status"] == "verified"
        assert data["bookings"]
        assert all("address" not in booking for booking in data["bookings"])
        assert HOME["address"] not in str(data)

    def test_anonymous_callers_get_401(self, client: FlaskClient) -> None:
        assert client.get("/api/v1/me/export").status_code == 401
        assert client.delete("/api/v1/me", json={"password": "x"}).status_code == 401


class TestErasure:
    def test_erasure_needs_the_password(self, client: FlaskClient, db: Session) -> None:
        patient = make_user(db)
        log_in_as(client, patient.email)
        wrong = client.delete("/api/v1/me", json={"password": "not it"})
        assert wrong.status_code == 422
        assert "password" in wrong.get_json()["error"]["details"]["fields"]
        assert client.delete("/api/v1/me", json={}).status_code == 422
        db.refresh(patient)
        assert patient.erased_at is None
        assert patient.is_active

    def test_a_patient_is_erased_future_visits_cancelled_past_ones_kept_bare(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, practitioner, future, past = a_patient_with_history(db)
        email = patient.email
        log_in_as(client, email)
        client.post("/api/v1/auth/tokens", json={"name": "Zelda's phone"})
        in_flight = db.scalars(
            select(Notification).where(Notification.user_id == patient.id)
        ).first()
        assert in_flight is not None
        in_flight.status = NotificationStatus.SENDING  # a worker is sending it right now
        db.flush()
        assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
        db.expire_all()
        erased = db.get_one(User, patient.id)
        assert erased.erased_at is not None
        assert not erased.is_active
        assert email not in erased.email
        assert erased.phone is None
        assert erased.full_name == "Erased account"
        assert login(client, email=email).status_code == 401
        assert client.get("/api/v1/me").status_code == 401  # the session ended
        request = db.scalars(select(CareRequest).where(CareRequest.patient_id == patient.id)).one()
        assert (request.notes, request.postcode, request.address) == (None, None, None)
        assert (request.latitude, request.longitude) == (51.5, -0.1)  # the district, ~10 km
        cancelled = db.get_one(Booking, future.id)
        assert cancelled.status is BookingStatus.CANCELLED
        assert cancelled.address is None
        assert cancelled.video_room is None
        kept = db.get_one(Booking, past.id)
        assert kept.status is BookingStatus.COMPLETED
        assert kept.starts_at == past.starts_at
        assert kept.address is None
        assert kept.postcode is None
        told = db.scalars(
            select(Notification).where(
                Notification.subject_id == future.id,
                Notification.template == "booking_cancelled",
                Notification.user_id == practitioner.user_id,
            )
        ).all()
        assert len(told) == 1
        theirs = db.scalars(select(Notification).where(Notification.user_id == patient.id)).all()
        assert all(n.status is not NotificationStatus.PENDING for n in theirs)
        assert db.get_one(Notification, in_flight.id).status is NotificationStatus.DROPPED
        assert all(n.context == {} for n in theirs)
        tokens = db.scalars(select(AccessToken).where(AccessToken.user_id == patient.id)).all()
        assert all(t.revoked_at is not None and t.name is None for t in tokens)
        assert kept.idempotency_key is None
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "account.erased"))
        assert entry.subject_id == patient.id
        assert not entry.details
        # The address is free for a new account.
        fresh = {"email": email, "password": PASSWORD, "full_name": "New", "role": "patient"}
        again = client.post("/api/v1/auth/register", json=fresh)
        assert again.status_code == 201

    def test_a_practitioner_is_delisted_and_their_evidence_deleted(
        self, client: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        practitioner = make_practitioner(db)
        credential = practitioners.submit_credential(
            db, practitioner.user, {"kind": "hcpc", "number": "PH424242"}, business_today()
        )
        evidence = practitioners.add_evidence(
            db,
            practitioner.user,
            credential.id,
            io.BytesIO(pdf_file()),
            evidence_backend.store,
        )
        assert evidence_backend.names() == {evidence.stored_name}
        patient = make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        log_in_as(client, practitioner.user.email)
        assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
        db.expire_all()
        assert evidence_backend.names() == set()
        assert db.scalars(select(Evidence)).all() == []
        gone = db.get_one(Practitioner, practitioner.id)
        assert gone.status is not ListingStatus.LISTED
        assert (gone.bio, gone.base_postcode, gone.languages) == ("", None, [])
        assert (
            db.scalars(select(WeeklyRule).where(WeeklyRule.practitioner_id == gone.id)).all() == []
        )
        assert client.get(f"/api/v1/practitioners/{practitioner.id}").status_code == 404
        assert db.get_one(Booking, booking.id).status is BookingStatus.CANCELLED
        told = db.scalars(
            select(Notification.user_id).where(
                Notification.subject_id == booking.id, Notification.template == "booking_cancelled"
            )
        ).all()
        assert patient.id in told

    def test_admins_are_not_self_erased(self, client: FlaskClient, db: Session) -> None:
        admin = make_user(db, Role.ADMIN)
        log_in_as(client, admin.email)
        response = client.delete("/api/v1/me", json={"password": PASSWORD})
        assert response.status_code == 409


def test_staff_reads_of_health_notes_and_addresses_are_on_the_record(
    client: FlaskClient, db: Session
) -> None:
    patient, _, future, _ = a_patient_with_history(db)
    request = db.scalars(select(CareRequest).where(CareRequest.patient_id == patient.id)).one()
    admin = make_user(db, Role.ADMIN)
    log_in_as(client, admin.email)
    assert client.get(f"/api/v1/requests/{request.id}").get_json()["notes"] == NOTES
    assert client.get(f"/api/v1/bookings/{future.id}").get_json()["address"] == HOME["address"]
    actions = {
        (entry.action, entry.subject_id, entry.actor_id)
        for entry in db.scalars(select(AuditEntry).where(AuditEntry.action.like("%.viewed")))
    }
    assert actions == {
        ("care_request.viewed", request.id, admin.id),
        ("booking.viewed", future.id, admin.id),
    }
    log_in_as(client, patient.email)  # the patient's own reads are not audited
    client.get(f"/api/v1/requests/{request.id}")
    own_reads = select(AuditEntry).where(
        AuditEntry.actor_id == patient.id, AuditEntry.action.like("%.viewed")
    )
    assert db.scalars(own_reads).all() == []


def test_erasure_clears_review_comments_and_keeps_the_stars(
    client: FlaskClient, db: Session
) -> None:
    patient, _, _, past = a_patient_with_history(db)
    written = reviews.review_visit(
        db, patient, past.id, 4, "My neighbour Ann recommended her", utcnow()
    )
    log_in_as(client, patient.email)
    exported = client.get("/api/v1/me/export").get_json()
    assert exported["reviews"][0]["comment"].startswith("My neighbour")
    assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
    db.expire_all()
    kept = db.get_one(Review, written.id)
    assert (kept.comment, kept.rating) == (None, 4)
