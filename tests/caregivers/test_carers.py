"""Carers: a patient invites someone by email; once accepted, the carer acts for the patient
(requests, bookings, courses, reviews) and gets the patient's messages, until the patient
revokes it or the carer steps down. Every action records who did it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts import acting_for
from marketplace.accounts.models import CarerGrant, CarerStatus, Role, User
from marketplace.booking.models import Booking
from marketplace.booking.reminders import queue_due_reminders
from marketplace.caregivers import service as carers
from marketplace.db import utcnow
from marketplace.messages.compose import Sources, compose
from marketplace.notifications.models import Channel, Notification, NotificationStatus
from marketplace.practitioners.models import Practitioner
from marketplace.reviews.models import Review
from tests.support.accounts import PASSWORD, log_in_as
from tests.support.factories import (
    book,
    make_carer,
    make_practitioner,
    make_user,
    past_visit,
    weekday_at,
)

NOTES = "Falls at night; new tremor in the left hand"


def invitation_message(db: Session, grant_id: uuid.UUID) -> Notification:
    return db.scalars(
        select(Notification).where(
            Notification.subject_type == "carer_grant", Notification.subject_id == grant_id
        )
    ).one()


def messages_to(db: Session, user: User, booking_id: Any) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification).where(
                Notification.user_id == user.id, Notification.subject_id == uuid.UUID(booking_id)
            )
        )
    )


def book_for(client: FlaskClient, patient: User, practitioner: Practitioner, **extra: Any) -> Any:
    return client.post(
        "/api/v1/bookings",
        json={
            "patient_id": str(patient.id),
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(10).isoformat(),
            "mode": "video",
            **extra,
        },
    )


class TestInvitation:
    def test_the_invitation_goes_to_the_address_with_a_code_and_no_health_data(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        patient.full_name = "Ada Patient"
        log_in_as(client, patient.email)
        response = client.post("/api/v1/me/carers", json={"email": " Helper@Example.org "})
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["state"] == "invited"
        assert response.get_json()["email"] == "helper@example.org"
        assert "code" not in response.get_json()  # the code is for the invited person only
        notification = invitation_message(db, uuid.UUID(response.get_json()["id"]))
        with app.test_request_context():
            message = compose(notification, Sources.load(db, [notification]))
        assert message is not None
        assert message.email == "helper@example.org"
        assert message.phone is None
        code = notification.context["code"]
        accept = f"http://127.0.0.1:5000/carers/accept?code={code}"  # the embedded default
        assert accept in message.text
        assert f'href="{accept}"' in (message.html or "")
        assert "Ada Patient has invited you" in message.text
        grant = db.get_one(CarerGrant, uuid.UUID(response.get_json()["id"]))
        assert grant.code_hash != notification.context["code"]  # only the hash is kept
        assert (
            client.get("/api/v1/me/carers").get_json()["items"][0]["id"]
            == response.get_json()["id"]
        )

    def test_an_address_is_invited_once_and_not_your_own(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        log_in_as(client, patient.email)
        assert client.post("/api/v1/me/carers", json={"email": "a@example.org"}).status_code == 201
        again = client.post("/api/v1/me/carers", json={"email": "A@example.org"})
        assert again.status_code == 409
        assert again.get_json()["error"]["code"] == "already_invited"
        own = client.post("/api/v1/me/carers", json={"email": patient.email})
        assert own.status_code == 422
        assert "email" in own.get_json()["error"]["details"]["fields"]

    def test_at_most_five_carers_and_invitations_at_once(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        log_in_as(client, patient.email)
        for number in range(carers.MAX_LIVE_GRANTS):
            invited = client.post("/api/v1/me/carers", json={"email": f"c{number}@example.org"})
            assert invited.status_code == 201
        refused = client.post("/api/v1/me/carers", json={"email": "one-more@example.org"})
        assert refused.status_code == 409
        assert refused.get_json()["error"]["code"] == "too_many_carers"
        first = client.get("/api/v1/me/carers").get_json()["items"][0]["id"]
        assert client.post(f"/api/v1/carers/{first}/revoke").status_code == 200
        again = client.post("/api/v1/me/carers", json={"email": "one-more@example.org"})
        assert again.status_code == 201

    def test_only_the_invited_address_accepts_and_only_once(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, invited, other = make_user(db), make_user(db), make_user(db)
        invitation = carers.invite_carer(db, patient, invited.email, utcnow())
        log_in_as(client, other.email)
        wrong_person = client.post("/api/v1/carers/accept", json={"code": invitation.code})
        assert wrong_person.status_code == 403
        assert wrong_person.get_json()["error"]["code"] == "invitation_for_another_address"
        log_in_as(client, invited.email)
        wrong_code = client.post("/api/v1/carers/accept", json={"code": "not-the-code"})
        assert wrong_code.status_code == 404
        accepted = client.post("/api/v1/carers/accept", json={"code": invitation.code})
        assert accepted.status_code == 200, accepted.get_json()
        assert accepted.get_json()["patient_id"] == str(patient.id)
        assert accepted.get_json()["state"] == "active"
        used = client.post("/api/v1/carers/accept", json={"code": invitation.code})
        assert used.status_code == 404
        assert client.get("/api/v1/me/caring-for").get_json()["items"][0]["patient_id"] == str(
            patient.id
        )

    def test_an_expired_or_revoked_invitation_cannot_be_accepted(self, db: Session) -> None:
        patient, invited = make_user(db), make_user(db)
        expired = carers.invite_carer(db, patient, invited.email, utcnow() - timedelta(days=8))
        with pytest.raises(carers.InvitationInvalid):
            carers.accept_invitation(db, invited, expired.code, utcnow())
        revoked = carers.invite_carer(db, patient, invited.email, utcnow())  # replaces it
        carers.end_grant(db, patient, revoked.grant.id, utcnow())
        assert invitation_message(db, revoked.grant.id).status is NotificationStatus.DROPPED
        with pytest.raises(carers.InvitationInvalid):
            carers.accept_invitation(db, invited, revoked.code, utcnow())

    def test_practitioners_neither_have_nor_are_carers(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner_user = make_user(db, Role.PRACTITIONER)
        patient = make_user(db)
        invitation = carers.invite_carer(db, patient, practitioner_user.email, utcnow())
        log_in_as(client, practitioner_user.email)
        refused = client.post("/api/v1/carers/accept", json={"code": invitation.code})
        assert refused.status_code == 403
        assert db.get_one(CarerGrant, invitation.grant.id).status is CarerStatus.INVITED


class TestActingForThePatient:
    def test_a_carer_requests_books_moves_and_cancels_and_each_records_who(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        carer, _ = make_carer(db, patient)
        log_in_as(client, carer.email)
        request = client.post(
            "/api/v1/requests",
            json={
                "patient_id": str(patient.id),
                "mode": "video",
                "specialty": "stroke",
                "earliest": weekday_at(9).isoformat(),
                "latest": weekday_at(17).isoformat(),
                "notes": NOTES,
            },
        )
        assert request.status_code == 201, request.get_json()
        assert request.get_json()["patient_id"] == str(patient.id)
        assert request.get_json()["created_by_id"] == str(carer.id)
        assert (
            client.get(f"/api/v1/requests/{request.get_json()['id']}").get_json()["notes"] == NOTES
        )
        matches = client.get(f"/api/v1/requests/{request.get_json()['id']}/matches")
        assert matches.status_code == 200
        withdrawn = client.post(f"/api/v1/requests/{request.get_json()['id']}/withdraw")
        assert withdrawn.get_json()["withdrawn_by_id"] == str(carer.id)

        booked = book_for(client, patient, practitioner)
        assert booked.status_code == 201, booked.get_json()
        assert booked.get_json()["patient_id"] == str(patient.id)
        assert booked.get_json()["booked_by_id"] == str(carer.id)
        booking_id = booked.get_json()["id"]
        moved = client.post(
            f"/api/v1/bookings/{booking_id}/reschedule", json={"start": weekday_at(14).isoformat()}
        )
        assert moved.status_code == 200, moved.get_json()
        assert moved.get_json()["rescheduled_by_id"] == str(carer.id)
        calendar = client.get(f"/api/v1/bookings/{booking_id}/calendar.ics")
        assert calendar.status_code == 200
        assert booking_id in {b["id"] for b in client.get("/api/v1/bookings").get_json()["items"]}
        cancelled = client.post(f"/api/v1/bookings/{booking_id}/cancel", json={})
        assert cancelled.get_json()["cancelled_by_id"] == str(carer.id)
        assert cancelled.get_json()["status"] == "cancelled"
        log_in_as(client, patient.email)
        seen = client.get(f"/api/v1/bookings/{booking_id}").get_json()
        assert (seen["booked_by_id"], seen["cancelled_by_id"]) == (str(carer.id), str(carer.id))

    def test_a_carer_books_a_course_for_the_patient(self, client: FlaskClient, db: Session) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        book(db, patient, practitioner, weekday_at(9))  # the assessment
        carer, _ = make_carer(db, patient)
        log_in_as(client, carer.email)
        course = client.post(
            "/api/v1/courses",
            json={
                "patient_id": str(patient.id),
                "practitioner_id": str(practitioner.id),
                "start": weekday_at(10, days_ahead=8).isoformat(),
                "weeks": 3,
                "mode": "video",
            },
        )
        assert course.status_code == 201, course.get_json()
        assert course.get_json()["patient_id"] == str(patient.id)
        assert course.get_json()["created_by_id"] == str(carer.id)
        assert {s["booked_by_id"] for s in course.get_json()["sessions"]} == {str(carer.id)}
        cancelled = client.post(f"/api/v1/courses/{course.get_json()['id']}/cancel", json={})
        assert {s["status"] for s in cancelled.get_json()["sessions"]} == {"cancelled"}

    def test_a_carer_cannot_act_for_anyone_else(self, client: FlaskClient, db: Session) -> None:
        patient, stranger, practitioner = make_user(db), make_user(db), make_practitioner(db)
        carer, _ = make_carer(db, patient)
        theirs = book(db, stranger, practitioner, weekday_at(11))
        log_in_as(client, carer.email)
        refused = book_for(client, stranger, practitioner)
        assert refused.status_code == 404
        assert refused.get_json()["error"]["code"] == "not_your_patient"
        assert client.get(f"/api/v1/bookings/{theirs.id}").status_code == 404
        listed = client.get("/api/v1/bookings").get_json()["items"]
        assert str(theirs.id) not in {b["id"] for b in listed}

    def test_a_carer_of_one_patient_is_not_a_carer_of_another_patients_carer_grants(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        carer, _grant = make_carer(db, patient)
        log_in_as(client, carer.email)
        assert client.get("/api/v1/me/carers").get_json()["items"] == []  # not the patient's list
        other = carers.invite_carer(db, patient, "someone@example.org", utcnow()).grant
        assert client.post(f"/api/v1/carers/{other.id}/revoke").status_code == 404


class TestRevoking:
    def test_once_revoked_the_carer_is_refused_and_gets_no_more_messages(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        carer, grant = make_carer(db, patient)
        log_in_as(client, carer.email)
        booked = book_for(client, patient, practitioner)
        assert booked.status_code == 201
        booking_id = booked.get_json()["id"]
        queued_for_carer = messages_to(db, carer, booking_id)
        assert [n.template for n in queued_for_carer] == ["booking_confirmed"]
        for notification in queued_for_carer:  # still waiting to go out
            notification.status = NotificationStatus.PENDING

        log_in_as(client, patient.email)
        revoked = client.post(f"/api/v1/carers/{grant.id}/revoke")
        assert revoked.status_code == 200
        assert revoked.get_json()["state"] == "revoked"
        assert revoked.get_json()["revoked_by_id"] == str(patient.id)
        db.expire_all()
        assert {n.status for n in messages_to(db, carer, booking_id)} == {
            NotificationStatus.DROPPED
        }

        log_in_as(client, carer.email)
        assert client.get(f"/api/v1/bookings/{booking_id}").status_code == 404
        assert client.post(f"/api/v1/bookings/{booking_id}/cancel", json={}).status_code == 404
        assert (
            book_for(client, patient, practitioner, start=weekday_at(15).isoformat()).get_json()[
                "error"
            ]["code"]
            == "not_your_patient"
        )
        assert client.get("/api/v1/me/caring-for").get_json()["items"] == []

        booking = db.get_one(Booking, uuid.UUID(booking_id))
        queue_due_reminders(db, booking.starts_at - timedelta(hours=1), limit=100, sms=False)
        reminders = [n for n in messages_to(db, carer, booking_id) if "reminder" in n.template]
        assert reminders == []

    def test_a_carer_can_step_down(self, client: FlaskClient, db: Session) -> None:
        patient = make_user(db)
        carer, grant = make_carer(db, patient)
        log_in_as(client, carer.email)
        stepped_down = client.post(f"/api/v1/carers/{grant.id}/revoke")
        assert stepped_down.status_code == 200
        again = client.post(f"/api/v1/carers/{grant.id}/revoke")
        assert again.status_code == 409
        log_in_as(client, patient.email)
        [shown] = client.get("/api/v1/me/carers").get_json()["items"]
        assert (shown["state"], shown["revoked_by_id"]) == ("revoked", str(carer.id))


class TestCarersMessages:
    def test_the_carer_gets_confirmations_and_both_reminders_naming_the_patient(
        self, app: Flask, db: Session
    ) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        patient.full_name = "Ada Patient"
        carer, _ = make_carer(db, patient)
        carer.phone = "+447700900456"
        booking = book(db, patient, practitioner, weekday_at(10))  # booked by the patient
        queue_due_reminders(db, booking.starts_at - timedelta(hours=1), limit=100, sms=True)
        sent = {}
        with app.test_request_context():
            for notification in messages_to(db, carer, str(booking.id)):
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                sent[(notification.template, notification.channel)] = message
        assert set(sent) == {
            ("booking_confirmed", Channel.EMAIL),
            ("reminder_early", Channel.EMAIL),
            ("reminder_late", Channel.EMAIL),
            ("reminder_late", Channel.SMS),
        }
        confirmed = sent[("booking_confirmed", Channel.EMAIL)]
        assert confirmed.email == carer.email
        assert "Ada Patient's video visit is booked." in confirmed.text
        assert "For: Ada Patient" in confirmed.text
        assert "https://" in confirmed.text  # the carer may join the video visit
        assert confirmed.attachments  # the calendar file
        assert "Ada Patient's video visit" in sent[("reminder_early", Channel.EMAIL)].text
        assert "for Ada Patient" in sent[("reminder_late", Channel.SMS)].text


class TestCarersReviews:
    def test_a_carer_reviews_a_completed_visit_once(self, client: FlaskClient, db: Session) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        visit = past_visit(db, patient, practitioner, weekday_at(10))
        carer, _ = make_carer(db, patient)
        log_in_as(client, carer.email)
        reviewed = client.post(f"/api/v1/bookings/{visit.id}/review", json={"rating": 4})
        assert reviewed.status_code == 201, reviewed.get_json()
        review = db.get_one(Review, uuid.UUID(reviewed.get_json()["id"]))
        assert review.author_id == carer.id
        again = client.post(f"/api/v1/bookings/{visit.id}/review", json={"rating": 5})
        assert again.status_code == 409
        log_in_as(client, patient.email)  # once per visit, whoever wrote it
        assert (
            client.post(f"/api/v1/bookings/{visit.id}/review", json={"rating": 5}).get_json()[
                "error"
            ]["code"]
            == "already_reviewed"
        )


class TestErasure:
    def test_erasing_the_patient_ends_their_carers_and_clears_the_addresses(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        carer, grant = make_carer(db, patient)
        pending = carers.invite_carer(db, patient, "cousin@example.org", utcnow()).grant
        log_in_as(client, patient.email)
        exported = client.get("/api/v1/me/export").get_json()
        assert {g["id"] for g in exported["carers"]} == {str(grant.id), str(pending.id)}
        assert all("code" not in m["context"] for m in exported["messages"])
        erased = client.delete("/api/v1/me", json={"password": PASSWORD})
        assert erased.status_code == 204, erased.get_json()
        db.expire_all()
        for ended in (db.get_one(CarerGrant, grant.id), db.get_one(CarerGrant, pending.id)):
            assert (ended.status, ended.email, ended.code_hash) == (CarerStatus.REVOKED, None, None)
        invitation = invitation_message(db, pending.id)
        assert invitation.status is NotificationStatus.DROPPED
        assert invitation.address is None
        assert invitation.context == {}
        assert acting_for.cared_for_ids(db, carer.id) == []


class TestAfterTheEnd:
    def test_a_revoked_carers_failed_or_racing_messages_never_go_out(
        self, app: Flask, db: Session
    ) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        carer, grant = make_carer(db, patient)
        booking = book(db, patient, practitioner, weekday_at(10))
        [confirmation] = messages_to(db, carer, str(booking.id))
        confirmation.status = NotificationStatus.FAILED  # an admin could retry it
        carers.end_grant(db, patient, grant.id, utcnow())
        db.refresh(confirmation)
        assert confirmation.status is NotificationStatus.DROPPED

        second, grant = make_carer(db, patient)
        other = book(db, patient, practitioner, weekday_at(13))
        [racing] = messages_to(db, second, str(other.id))
        grant.status = CarerStatus.REVOKED  # ended while the message was already on its way
        db.flush()
        with app.test_request_context():
            assert compose(racing, Sources.load(db, [racing])) is None
            [to_patient] = messages_to(db, patient, str(other.id))
            assert compose(to_patient, Sources.load(db, [to_patient])) is not None

    def test_the_code_is_forgotten_once_used_and_the_address_once_erased(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        carer, grant = make_carer(db, patient)
        assert "code" not in invitation_message(db, grant.id).context
        log_in_as(client, carer.email)
        assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
        db.expire_all()
        assert invitation_message(db, grant.id).address is None
        assert db.get_one(CarerGrant, grant.id).status is CarerStatus.REVOKED
        log_in_as(client, patient.email)
        assert carer.email not in str(client.get("/api/v1/me/export").get_json())

    def test_erasing_the_patient_clears_what_their_carer_wrote_about_their_visits(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, practitioner = make_user(db), make_practitioner(db)
        carer, _ = make_carer(db, patient)
        visit = past_visit(db, patient, practitioner, weekday_at(10))
        log_in_as(client, carer.email)
        reviewed = client.post(
            f"/api/v1/bookings/{visit.id}/review",
            json={"rating": 5, "comment": "Dad walks further now."},
        )
        assert reviewed.status_code == 201
        log_in_as(client, patient.email)
        assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 204
        review = db.get_one(Review, uuid.UUID(reviewed.get_json()["id"]))
        db.refresh(review)
        assert (review.comment, review.rating) == (None, 5)


def test_slots_have_the_length_of_the_cared_for_patients_next_visit(
    client: FlaskClient, db: Session
) -> None:
    patient, stranger, practitioner = make_user(db), make_user(db), make_practitioner(db)
    book(db, patient, practitioner, weekday_at(9))  # the assessment: follow-ups next
    carer, _ = make_carer(db, patient)
    log_in_as(client, carer.email)
    url = f"/api/v1/practitioners/{practitioner.id}/slots"
    own = client.get(url).get_json()["items"][0]
    theirs = client.get(url, query_string={"patient_id": str(patient.id)}).get_json()["items"][0]
    length = {
        name: datetime.fromisoformat(slot["end"]) - datetime.fromisoformat(slot["start"])
        for name, slot in (("own", own), ("theirs", theirs))
    }
    assert length == {
        "own": timedelta(minutes=practitioner.assessment_minutes),
        "theirs": timedelta(minutes=practitioner.session_minutes),
    }
    refused = client.get(url, query_string={"patient_id": str(stranger.id)})
    assert refused.status_code == 404
