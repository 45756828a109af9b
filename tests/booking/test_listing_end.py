"""Trust when a listing ends: nothing is offered or booked past the last day of a practitioner's
listing, and when a listing ends early (suspension, a lapse, a shorter renewal) the visits after
its end are cancelled, the patient's side told and the request reopened."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.admin import service as admin
from marketplace.audit.models import AuditEntry
from marketplace.booking import bookings
from marketplace.booking.models import (
    Booking,
    BookingStatus,
    CareRequest,
    Reminder,
    ReminderStatus,
    RequestStatus,
)
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.db import utcnow
from marketplace.geo.geocoding import TableGeocoder
from marketplace.matching.service import match_practitioners
from marketplace.notifications.models import Notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import ListingStatus, Mode, Practitioner
from tests.support.accounts import log_in_as
from tests.support.care_requests import claim, open_request
from tests.support.factories import (
    approve,
    book,
    hcpc_fields,
    make_booking,
    make_carer,
    make_practitioner,
    make_user,
    profile_input,
)

TODAY = business_today()


def weekday_after(day: date, hour: int, days: int = 1) -> datetime:
    """A Monday-to-Friday `days` or more after `day`, at `hour` London time, in UTC."""
    later = day + timedelta(days=days)
    while later.weekday() >= 5:
        later += timedelta(days=1)
    return datetime.combine(later, time(hour), BUSINESS_ZONE).astimezone(UTC)


LAST_DAY = weekday_after(TODAY, 9, days=7).astimezone(BUSINESS_ZONE).date()
ON_THE_LAST_DAY = weekday_after(LAST_DAY, 10, days=0)
AFTER_IT = weekday_after(LAST_DAY, 10)


def lapsing(db: Session, **profile: Any) -> Practitioner:
    """A practitioner whose registration is valid through `LAST_DAY`."""
    return make_practitioner(db, expires_on=LAST_DAY, **profile)


class TestNothingPastTheLastDay:
    def test_slots_stop_at_the_end_of_the_last_day(self, client: FlaskClient, db: Session) -> None:
        practitioner = lapsing(db)
        answer = client.get(
            f"/api/v1/practitioners/{practitioner.id}/slots",
            query_string={
                "from": ON_THE_LAST_DAY.isoformat(),
                "to": (AFTER_IT + timedelta(days=7)).isoformat(),
            },
        )
        starts = [datetime.fromisoformat(item["start"]) for item in answer.get_json()["items"]]
        assert starts, "the last day itself is bookable"
        ends = datetime.combine(LAST_DAY + timedelta(days=1), time(), BUSINESS_ZONE)
        assert max(datetime.fromisoformat(i["end"]) for i in answer.get_json()["items"]) <= ends

    def test_booking_past_the_last_day_is_refused(self, db: Session) -> None:
        practitioner, patient = lapsing(db), make_user(db)
        assert book(db, patient, practitioner, ON_THE_LAST_DAY).status is BookingStatus.CONFIRMED
        with pytest.raises(bookings.SlotUnavailable):
            book(db, make_user(db), practitioner, AFTER_IT)

    def test_a_claim_past_the_last_day_is_refused(self, db: Session) -> None:
        practitioner = lapsing(db)
        request = open_request(db, AFTER_IT)
        with pytest.raises(bookings.SlotUnavailable):
            claim(db, practitioner, request, AFTER_IT)
        assert request.status is RequestStatus.OPEN

    def test_a_reschedule_past_the_last_day_is_refused(self, db: Session) -> None:
        practitioner, patient = lapsing(db), make_user(db)
        booking = book(db, patient, practitioner, ON_THE_LAST_DAY)
        with pytest.raises(bookings.SlotUnavailable):
            bookings.reschedule_booking(db, patient, booking.id, AFTER_IT, now=utcnow())
        assert booking.starts_at == ON_THE_LAST_DAY

    def test_a_course_running_past_the_last_day_books_nothing(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner, patient = lapsing(db), make_user(db)
        book(db, patient, practitioner, weekday_after(TODAY, 9, days=2))  # the assessment
        first = weekday_after(TODAY, 15, days=3)
        log_in_as(client, patient.email)
        course = client.post(
            "/api/v1/courses",
            json={
                "practitioner_id": str(practitioner.id),
                "start": first.isoformat(),
                "weeks": 3,
                "mode": "video",
            },
        )
        assert (course.status_code, course.get_json()["error"]["code"]) == (409, "course_clashes")

    def test_matching_offers_no_slot_past_the_last_day(self, db: Session) -> None:
        lapsing(db, specialties=["stroke"])
        late_on_the_last_day = weekday_after(LAST_DAY, 16, days=0)  # room for one visit
        request = open_request(
            db, ON_THE_LAST_DAY, earliest=late_on_the_last_day, latest=AFTER_IT + timedelta(days=3)
        )
        now = utcnow()
        [match] = match_practitioners(db, request, now=now, today=business_today(now))
        ends = datetime.combine(LAST_DAY + timedelta(days=1), time(), BUSINESS_ZONE)
        assert [slot.start for slot in match.next_slots] == [late_on_the_last_day]
        assert match.next_slots[0].end <= ends


def future_visits(db: Session, practitioner: Practitioner) -> tuple[User, User, Booking, Booking]:
    """A patient with a carer, a video visit and a home visit booked from their request."""
    patient = make_user(db)
    carer, _ = make_carer(db, patient)
    video = book(db, patient, practitioner, weekday_after(TODAY, 10, days=10))
    request = open_request(
        db,
        weekday_after(TODAY, 14, days=10),
        patient_id=patient.id,
        mode=Mode.HOME,
        postcode="SW1A 2AA",
        latitude=51.5034,
        longitude=-0.1276,
        address="1 Test Street",
    )
    home = claim(db, practitioner, request, weekday_after(TODAY, 14, days=10))
    return patient, carer, video, home


def assert_cancelled_for_the_listing(db: Session, booking: Booking, told: set[uuid.UUID]) -> None:
    assert booking.status is BookingStatus.CANCELLED
    assert booking.cancellation_code == bookings.PRACTITIONER_UNAVAILABLE
    assert not booking.late_cancellation  # never the patient's fee
    pending = db.scalars(
        select(Reminder).where(
            Reminder.booking_id == booking.id, Reminder.status == ReminderStatus.PENDING
        )
    ).all()
    assert pending == []
    messages = db.scalars(
        select(Notification).where(
            Notification.subject_id == booking.id, Notification.template.like("%cancelled%")
        )
    ).all()
    assert {m.user_id for m in messages} >= told
    audit = db.scalars(
        select(AuditEntry).where(
            AuditEntry.subject_id == booking.id, AuditEntry.action == "booking.cancelled"
        )
    ).one()
    assert audit.details["code"] == bookings.PRACTITIONER_UNAVAILABLE
    assert set(audit.details) == {"code", "practitioner_id"}  # ids only


class TestAListingEndingEarly:
    def test_a_suspension_cancels_every_visit_to_come(
        self, client: FlaskClient, db: Session
    ) -> None:
        practitioner = make_practitioner(db)
        patient, carer, video, home = future_visits(db, practitioner)
        an_admin = make_user(db, Role.ADMIN)
        admin.suspend_practitioner(db, an_admin, practitioner.id, "complaint", TODAY)
        everyone = {patient.id, carer.id, practitioner.user_id}
        for booking in (video, home):
            assert_cancelled_for_the_listing(db, booking, everyone)
            assert booking.cancelled_by_id == an_admin.id
        request = db.get_one(CareRequest, home.request_id)
        assert request.status is RequestStatus.OPEN  # matching can offer someone else
        log_in_as(client, patient.email)
        shown = client.get(f"/api/v1/bookings/{video.id}").get_json()
        assert (shown["status"], shown["cancellation_code"]) == (
            "cancelled",
            "practitioner_unavailable",
        )
        assert shown["video_url"] is None
        admin.reinstate_practitioner(db, an_admin, practitioner.id, "cleared", TODAY)
        assert video.status is home.status is BookingStatus.CANCELLED  # not resurrected

    def test_a_shorter_renewal_cancels_the_visits_past_its_end(self, db: Session) -> None:
        practitioner = make_practitioner(db, expires_on=TODAY + timedelta(days=60))
        _, _, video, home = future_visits(db, practitioner)
        kept = book(db, make_user(db), practitioner, weekday_after(TODAY, 10, days=2))
        renewal = practitioners.submit_credential(db, practitioner.user, hcpc_fields(), TODAY)
        approve(db, renewal, weekday_after(TODAY, 9, days=4).date(), TODAY)  # supersedes the first
        assert practitioner.listed_until is not None
        assert practitioner.listed_until < video.starts_at.date()
        for booking in (video, home):
            assert_cancelled_for_the_listing(db, booking, {practitioner.user_id})
        assert kept.status is BookingStatus.CONFIRMED  # before the end: kept

    def test_the_daily_check_cancels_visits_after_a_lapse(self, app: Flask, db: Session) -> None:
        from worker.tasks import check_credential_lapses

        lapsed = make_practitioner(
            db, expires_on=TODAY - timedelta(days=1), today=TODAY - timedelta(days=30)
        )
        # A visit booked before the rule held (the credential's end was not yet enforced).
        start = weekday_after(TODAY, 10, days=3)
        visit = make_booking(db, lapsed, start, start + timedelta(hours=1))
        earlier = start - timedelta(days=10)
        past = make_booking(
            db, lapsed, earlier, earlier + timedelta(hours=1), status=BookingStatus.COMPLETED
        )
        with app.app_context():
            report = check_credential_lapses.run()
        assert report == {"delisted": 1, "warned": 0, "visits_cancelled": 1}
        db.expire_all()  # the task wrote through its own session
        assert_cancelled_for_the_listing(db, visit, {lapsed.user_id, visit.patient_id})
        assert visit.cancelled_by_id is None  # the system
        assert past.status is BookingStatus.COMPLETED


def test_the_cancellation_message_says_why(app: Flask, db: Session) -> None:
    from marketplace.messages.compose import Sources, compose

    practitioner = make_practitioner(db)
    patient, carer, video, _ = future_visits(db, practitioner)
    admin.suspend_practitioner(db, make_user(db, Role.ADMIN), practitioner.id, "complaint", TODAY)
    texts = {}
    with app.test_request_context():
        for notification in db.scalars(
            select(Notification).where(
                Notification.subject_id == video.id,
                Notification.template == "booking_cancelled",
                Notification.channel == "email",
            )
        ):
            message = compose(notification, Sources.load(db, [notification]))
            assert message is not None
            texts[notification.user_id] = message.text
    assert set(texts) == {patient.id, carer.id, practitioner.user_id}
    for patient_side in (patient.id, carer.id):
        assert "can no longer take visits" in texts[patient_side]
        assert "Nothing is charged" in texts[patient_side]
    assert "your listing ended before the visit" in texts[practitioner.user_id]
    assert "late cancellation" not in "".join(texts.values())


def test_a_decision_that_does_not_shorten_the_listing_cancels_nothing(db: Session) -> None:
    practitioner = make_practitioner(db)
    _, _, video, home = future_visits(db, practitioner)
    # Delisted by their own profile change: their booked visits stand (they may cancel them).
    changed = profile_input(profession="neuromuscular_therapist", specialties=["stroke"])
    practitioners.save_profile(db, practitioner.user, changed, TODAY, TableGeocoder())
    assert (practitioner.status, practitioner.status_reason) == (
        ListingStatus.DELISTED,
        "credential_missing",
    )
    rejected = practitioners.submit_credential(db, practitioner.user, hcpc_fields(), TODAY)
    admin.decide_credential(
        db,
        make_user(db, Role.ADMIN),
        rejected.id,
        decision=admin.Decision.REJECT,
        reason="Not on the register.",
        expires_on=None,
        register_check=None,
        today=TODAY,
    )
    assert video.status is home.status is BookingStatus.CONFIRMED


def test_the_daily_check_sweeps_a_lapse_recorded_before_it(app: Flask, db: Session) -> None:
    from worker.tasks import check_credential_lapses

    lapsed = make_practitioner(
        db, expires_on=TODAY - timedelta(days=1), today=TODAY - timedelta(days=30)
    )
    start = weekday_after(TODAY, 10, days=3)
    visit = make_booking(db, lapsed, start, start + timedelta(hours=1))
    # A profile save in the morning records the lapse before the daily check runs.
    practitioners.save_profile(db, lapsed.user, profile_input(), TODAY, TableGeocoder())
    assert lapsed.status_reason == "credential_expired"
    with app.app_context():
        report = check_credential_lapses.run()
    assert report == {"delisted": 0, "warned": 0, "visits_cancelled": 1}
    db.expire_all()
    assert visit.cancellation_code == bookings.PRACTITIONER_UNAVAILABLE
