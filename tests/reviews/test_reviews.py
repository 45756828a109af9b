"""Verified reviews: only after a completed visit, once, by its patient; one reply; hidden ones
gone from everything public; the profile's average, count and recent reviews; a reason line in
matching."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from marketplace.accounts.models import Role, User
from marketplace.audit.models import AuditEntry
from marketplace.booking.models import Booking, BookingStatus
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.matching.service import match_practitioners
from marketplace.practitioners.models import Practitioner
from marketplace.reviews.models import Review
from tests.support.accounts import log_in_as
from tests.support.care_requests import request_at
from tests.support.factories import book, make_practitioner, make_user, past_visit, weekday_at


def visit(
    db: Session,
    patient: User,
    practitioner: Practitioner,
    *,
    days_ago: int = 7,
    status: BookingStatus = BookingStatus.COMPLETED,
    hour: int = 10,
) -> Booking:
    return past_visit(
        db,
        patient,
        practitioner,
        weekday_at(hour),
        back=timedelta(days=days_ago + 7),
        status=status,
    )


def review(
    client: FlaskClient, booking: Booking, rating: int = 5, **fields: object
) -> TestResponse:
    return client.post(f"/api/v1/bookings/{booking.id}/review", json={"rating": rating, **fields})


class TestWhoMayReview:
    def test_only_a_completed_visit_is_reviewed_once_by_its_patient(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, other = make_user(db), make_user(db)
        practitioner = make_practitioner(db)
        done = visit(db, patient, practitioner)
        upcoming = book(db, patient, practitioner, weekday_at(15))
        no_show = visit(db, patient, practitioner, hour=12, status=BookingStatus.NO_SHOW)
        log_in_as(client, other.email)
        assert review(client, done).status_code == 404  # not their visit
        log_in_as(client, patient.email)
        for not_completed in (upcoming, no_show):
            refused = review(client, not_completed)
            assert refused.status_code == 409
            assert refused.get_json()["error"]["code"] == "visit_not_completed"
        first = review(client, done, 4, comment="Clear exercises, very patient.")
        assert first.status_code == 201, first.get_json()
        again = review(client, done, 1)
        assert again.status_code == 409
        assert again.get_json()["error"]["code"] == "already_reviewed"

    @pytest.mark.parametrize(
        "body",
        [{"rating": 0}, {"rating": 6}, {"rating": "5"}, {"rating": 5, "comment": "x" * 1001}],
    )
    def test_ratings_are_1_to_5_and_comments_short(
        self, client: FlaskClient, db: Session, body: dict[str, object]
    ) -> None:
        patient = make_user(db)
        done = visit(db, patient, make_practitioner(db))
        log_in_as(client, patient.email)
        response = client.post(f"/api/v1/bookings/{done.id}/review", json=body)
        assert response.status_code == 422

    def test_the_practitioner_replies_once_and_nobody_else(
        self, client: FlaskClient, db: Session
    ) -> None:
        patient, practitioner, other = make_user(db), make_practitioner(db), make_practitioner(db)
        done = visit(db, patient, practitioner)
        log_in_as(client, patient.email)
        review_id = review(client, done).get_json()["id"]
        log_in_as(client, other.user.email)
        assert (
            client.post(f"/api/v1/reviews/{review_id}/reply", json={"reply": "Hi"}).status_code
            == 404
        )
        log_in_as(client, practitioner.user.email)
        reply = client.post(f"/api/v1/reviews/{review_id}/reply", json={"reply": "Thank you!"})
        assert reply.status_code == 200
        assert reply.get_json()["reply"] == "Thank you!"
        again = client.post(f"/api/v1/reviews/{review_id}/reply", json={"reply": "Again"})
        assert again.get_json()["error"]["code"] == "already_replied"


class TestWhatThePublicSees:
    def test_the_profile_shows_the_average_the_count_and_recent_reviews(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner = make_practitioner(db)
        ratings = [5, 4, 5, 2]
        for days_ago, rating in enumerate(ratings):
            patient = make_user(db)
            done = visit(db, patient, practitioner, days_ago=days_ago)
            log_in_as(client, patient.email)
            assert review(client, done, rating, comment=f"Rated {rating}").status_code == 201
        profile = client.get(f"/api/v1/practitioners/{practitioner.id}").get_json()
        assert profile["rating"] == {"average": 4.0, "count": 4}
        assert [r["comment"] for r in profile["recent_reviews"]] == [
            "Rated 2",
            "Rated 5",
            "Rated 4",
        ]
        assert "author_id" not in str(profile)
        listed = client.get(f"/api/v1/practitioners/{practitioner.id}/reviews?limit=2").get_json()
        assert len(listed["items"]) == 2
        assert listed["next_cursor"]

    def test_a_hidden_review_is_gone_from_everything_public(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        done = visit(db, patient, practitioner)
        log_in_as(client, patient.email)
        review_id = review(client, done, 1, comment="Names someone").get_json()["id"]
        admin = make_user(db, Role.ADMIN)
        log_in_as(client, admin.email)
        hidden = client.post(
            f"/api/v1/admin/reviews/{review_id}/hide", json={"reason": "It names another patient."}
        )
        assert hidden.status_code == 200
        profile = client.get(f"/api/v1/practitioners/{practitioner.id}").get_json()
        assert profile["rating"] == {"average": None, "count": 0}
        assert profile["recent_reviews"] == []
        assert (
            client.get(f"/api/v1/practitioners/{practitioner.id}/reviews").get_json()["items"] == []
        )
        [entry] = db.scalars(select(AuditEntry).where(AuditEntry.action == "review.hidden"))
        assert str(entry.subject_id) == review_id
        assert "names" not in str(entry.details or {}).lower()  # no reason in the audit log

    def test_an_unlisted_practitioner_has_no_public_reviews(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner = make_practitioner(db, verified=False)
        assert client.get(f"/api/v1/practitioners/{practitioner.id}/reviews").status_code == 404

    def test_matching_gives_the_rating_as_a_reason(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db, specialties=["parkinsons"])
        for rating in (5, 4):
            patient = make_user(db)
            done = visit(db, patient, practitioner)
            log_in_as(client, patient.email)
            review(client, done, rating)
        request = request_at(db)
        now = utcnow()
        [match] = match_practitioners(db, request, now=now, today=business_today(now))
        assert "4.5 from 2 reviews" in match.reasons
        db.scalars(select(Review).where(Review.rating == 4)).one().hidden_at = now
        db.flush()
        [match] = match_practitioners(db, request, now=now, today=business_today(now))
        assert "5.0 from 1 review" in match.reasons  # a hidden review no longer counts
