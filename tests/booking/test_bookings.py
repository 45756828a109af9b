"""Booking rules: free slots only, home visits in reach, idempotency, cancel, reschedule,
outcomes, who sees the address and the meeting link, reminders and notifications."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import vobject
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.booking import bookings
from marketplace.booking.models import (
    Booking,
    BookingStatus,
    Reminder,
    ReminderKind,
    ReminderStatus,
    RequestStatus,
)
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.errors import Conflict, NotFound, ValidationFailed
from marketplace.geo.geocoding import TableGeocoder
from marketplace.notifications.models import Notification
from marketplace.practitioners.models import Mode, Practitioner
from tests.support.accounts import log_in_as
from tests.support.care_requests import claim, open_request
from tests.support.factories import (
    BOOKING_POLICY,
    book,
    make_booking,
    make_practitioner,
    make_user,
    weekday_at,
)

LONDON = ZoneInfo("Europe/London")


HOME = {"address": "1 Test Street, London", "postcode": "SW1A 1AA"}


class TestInstantBooking:
    def test_a_free_slot_is_booked_confirmed_with_a_private_meeting_link(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        assert booking.status is BookingStatus.CONFIRMED
        assert booking.ends_at - booking.starts_at == timedelta(minutes=60)
        assert booking.video_room is not None
        assert len(booking.video_room) >= 22  # 16 random bytes, base64url
        url = bookings.video_url(booking, BOOKING_POLICY)
        assert url == f"https://meet.example.org/{booking.video_room}"

    @pytest.mark.parametrize(
        "start",
        [
            pytest.param(lambda: weekday_at(10, minute=5), id="off the 15-minute grid"),
            pytest.param(lambda: weekday_at(8), id="before opening"),
            pytest.param(lambda: weekday_at(16, minute=30), id="runs past closing"),
            pytest.param(lambda: utcnow() + timedelta(hours=2), id="inside the notice"),
            pytest.param(lambda: weekday_at(10, days_ahead=70), id="beyond the horizon"),
        ],
    )
    def test_only_a_free_slot_can_be_booked(self, db: Session, start: Any) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        with pytest.raises(bookings.SlotUnavailable):
            book(db, patient, practitioner, start())

    @pytest.mark.parametrize(
        ("mode", "start", "free"),
        [
            (Mode.VIDEO, (11, 0), False),  # inside the 15-minute buffer
            (Mode.VIDEO, (11, 15), True),  # video after a home visit: the buffer only
            (Mode.HOME, (11, 15), False),  # home after home: buffer plus 30 min travel
            (Mode.HOME, (11, 45), True),
        ],
    )
    def test_buffers_and_the_travel_buffer_keep_visits_apart(
        self, db: Session, mode: Mode, start: tuple[int, int], free: bool
    ) -> None:
        practitioner = make_practitioner(db)  # buffer 15 min, travel buffer 30 min
        make_booking(db, practitioner, weekday_at(10), weekday_at(11), mode=Mode.HOME)
        place = HOME if mode is Mode.HOME else {}
        attempt = weekday_at(start[0], minute=start[1])
        if free:
            book(db, make_user(db), practitioner, attempt, mode, **place)
            return
        with pytest.raises(bookings.SlotUnavailable):
            book(db, make_user(db), practitioner, attempt, mode, **place)

    def test_an_unlisted_practitioner_cannot_be_booked(self, db: Session) -> None:
        practitioner = make_practitioner(db, verified=False)
        with pytest.raises(NotFound):
            book(db, make_user(db), practitioner, weekday_at(10))

    def test_a_patient_cannot_hold_two_overlapping_visits(self, db: Session) -> None:
        patient = make_user(db)
        book(db, patient, make_practitioner(db), weekday_at(10))
        with pytest.raises(bookings.PatientBusy):
            book(db, patient, make_practitioner(db), weekday_at(10, minute=30))


class TestHomeVisits:
    def test_need_an_address_and_postcode(self, db: Session) -> None:
        practitioner = make_practitioner(db)
        with pytest.raises(ValidationFailed) as failure:
            book(db, make_user(db), practitioner, weekday_at(10), Mode.HOME)
        assert set(failure.value.details["fields"]) == {"address", "postcode"}

    def test_the_address_must_be_within_the_travel_radius(self, db: Session) -> None:
        practitioner = make_practitioner(db, travel_radius_km=2)
        far = {"address": "2 Far Road", "postcode": "N1 9GU"}  # about 5 km from SW1A
        with pytest.raises(ValidationFailed) as failure:
            book(db, make_user(db), practitioner, weekday_at(10), Mode.HOME, **far)
        assert "travel radius" in failure.value.details["fields"]["postcode"][0]
        booking = book(db, make_user(db), practitioner, weekday_at(10), Mode.HOME, **HOME)
        assert (booking.postcode, booking.video_room) == ("SW1A 1AA", None)

    def test_a_mode_the_practitioner_does_not_offer_is_refused(self, db: Session) -> None:
        practitioner = make_practitioner(db, modes=["video"], base_postcode=None)
        with pytest.raises(ValidationFailed):
            book(db, make_user(db), practitioner, weekday_at(10), Mode.HOME, **HOME)


class TestIdempotency:
    def test_the_same_key_returns_the_first_booking(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        first = book(db, patient, practitioner, weekday_at(10), key="retry-1")
        again = book(db, patient, practitioner, weekday_at(10), key="retry-1")
        assert again.id == first.id
        count = select(func.count()).select_from(Booking).where(Booking.patient_id == patient.id)
        assert db.scalar(count) == 1

    def test_a_used_key_with_another_body_is_422(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        book(db, patient, practitioner, weekday_at(10), key="retry-2")
        with pytest.raises(ValidationFailed) as failure:
            book(db, patient, practitioner, weekday_at(14), key="retry-2")
        assert failure.value.code == "idempotency_key_reused"

    def test_keys_belong_to_one_patient(self, db: Session) -> None:
        practitioner = make_practitioner(db)
        first = book(db, make_user(db), practitioner, weekday_at(10), key="shared")
        other = book(db, make_user(db), practitioner, weekday_at(14), key="shared")
        assert other.id != first.id


class TestCancelAndReschedule:
    def test_cancel_frees_the_time_once_and_records_late_cancellation(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        now = booking.starts_at - timedelta(hours=23)
        bookings.cancel_booking(db, patient, booking.id, "ill", now=now, policy=BOOKING_POLICY)
        assert (booking.status, booking.late_cancellation) == (BookingStatus.CANCELLED, True)
        assert bookings.video_url(booking, BOOKING_POLICY) is None
        with pytest.raises(bookings.BookingNotActive):
            bookings.cancel_booking(db, patient, booking.id, None, now=now, policy=BOOKING_POLICY)
        book(db, make_user(db), practitioner, weekday_at(10))  # the time is free again

    def test_early_cancellation_is_not_late(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        now = booking.starts_at - timedelta(hours=25)
        bookings.cancel_booking(db, patient, booking.id, None, now=now, policy=BOOKING_POLICY)
        assert booking.late_cancellation is False

    def test_strangers_cannot_cancel(self, db: Session) -> None:
        booking = book(db, make_user(db), make_practitioner(db), weekday_at(10))
        with pytest.raises(NotFound):
            bookings.cancel_booking(
                db, make_user(db), booking.id, None, now=utcnow(), policy=BOOKING_POLICY
            )

    def test_reschedule_moves_the_visit_and_its_reminders(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        # Moving by 30 minutes overlaps the old time: only the booking itself held it.
        later = weekday_at(10, minute=30)
        bookings.reschedule_booking(db, patient, booking.id, later, now=utcnow())
        assert booking.starts_at == weekday_at(10, minute=30)
        assert booking.sequence == 1
        assert pending_reminders(db, booking) == {
            (ReminderKind.EARLY, later - timedelta(hours=24)),
            (ReminderKind.LATE, later - timedelta(hours=2)),
        }
        dropped = db.scalars(
            select(Reminder.dropped_reason).where(
                Reminder.booking_id == booking.id, Reminder.status == ReminderStatus.DROPPED
            )
        ).all()
        assert dropped == ["The visit moved to another time."] * 2

    def test_moving_back_to_the_first_time_schedules_its_reminders_again(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        for start in (weekday_at(11), weekday_at(10)):
            bookings.reschedule_booking(db, patient, booking.id, start, now=utcnow())
        assert {send_at for _, send_at in pending_reminders(db, booking)} == {
            weekday_at(10) - timedelta(hours=24),
            weekday_at(10) - timedelta(hours=2),
        }

    def test_reschedule_onto_a_taken_time_keeps_the_old_time(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        book(db, make_user(db), practitioner, weekday_at(14))
        with pytest.raises(bookings.SlotUnavailable):
            bookings.reschedule_booking(db, patient, booking.id, weekday_at(14), now=utcnow())
        db.refresh(booking)
        assert (booking.starts_at, booking.status) == (weekday_at(10), BookingStatus.CONFIRMED)


class TestOutcomes:
    def test_only_by_the_practitioner(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        over = booking.ends_at
        with pytest.raises(NotFound):
            bookings.record_outcome(db, patient, booking.id, BookingStatus.COMPLETED, now=over)
        bookings.record_outcome(
            db, practitioner.user, booking.id, BookingStatus.COMPLETED, now=over
        )
        assert booking.status is BookingStatus.COMPLETED

    def test_completed_only_once_the_visit_is_over(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        early = (
            utcnow(),
            booking.starts_at + timedelta(seconds=42),
            booking.ends_at - timedelta(seconds=1),
        )
        for too_early in early:
            with pytest.raises(bookings.OutcomeTooEarly) as refused:
                bookings.record_outcome(
                    db, practitioner.user, booking.id, BookingStatus.COMPLETED, now=too_early
                )
            assert refused.value.code == "visit_not_over"
            assert refused.value.details == {"from": booking.ends_at.isoformat()}
        assert booking.status is BookingStatus.CONFIRMED

    def test_no_show_only_after_the_grace_period(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        grace = bookings.DEFAULT_POLICY.no_show_grace
        assert grace == timedelta(minutes=15)
        no_show, user = BookingStatus.NO_SHOW, practitioner.user
        early = booking.starts_at + grace - timedelta(seconds=1)
        with pytest.raises(bookings.OutcomeTooEarly):
            bookings.record_outcome(db, user, booking.id, no_show, now=early)
        bookings.record_outcome(db, user, booking.id, no_show, now=booking.starts_at + grace)
        assert booking.status is BookingStatus.NO_SHOW

    def test_over_http_too_early_is_a_409(self, db: Session, client: FlaskClient) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        log_in_as(client, practitioner.user.email)
        for outcome in ("complete", "no-show"):
            answer = client.post(f"/api/v1/bookings/{booking.id}/{outcome}")
            assert answer.status_code == 409
            assert answer.get_json()["error"]["code"] == "visit_not_over"


def test_reminder_rows_and_notifications_are_written_with_the_booking(db: Session) -> None:
    practitioner, patient = make_practitioner(db), make_user(db)
    booking = book(db, patient, practitioner, weekday_at(10))
    assert pending_reminders(db, booking) == {
        (ReminderKind.EARLY, booking.starts_at - timedelta(hours=24)),
        (ReminderKind.LATE, booking.starts_at - timedelta(hours=2)),
    }
    told = db.scalars(
        select(Notification.user_id).where(Notification.subject_id == booking.id)
    ).all()
    assert set(told) == {patient.id, practitioner.user_id}
    bookings.cancel_booking(db, patient, booking.id, None, now=utcnow(), policy=BOOKING_POLICY)
    assert pending_reminders(db, booking) == set()
    reasons = db.scalars(select(Reminder.dropped_reason).where(Reminder.booking_id == booking.id))
    assert set(reasons) == {"The booking was cancelled."}


def test_reminder_leads_follow_the_policy_and_skip_times_already_past(db: Session) -> None:
    practitioner, patient = make_practitioner(db), make_user(db)
    start = weekday_at(10)
    policy = bookings.BookingPolicy(
        early_reminder=timedelta(hours=48), late_reminder=timedelta(minutes=30)
    )
    now = start - timedelta(hours=40)  # the 48 h reminder's time has passed already
    booking, _ = bookings.create_booking(
        db,
        patient,
        bookings.BookingInput(practitioner.id, start, Mode.VIDEO),
        now=now,
        today=business_today(now),
        geocoder=TableGeocoder(),
        policy=policy,
    )
    assert pending_reminders(db, booking) == {(ReminderKind.LATE, start - timedelta(minutes=30))}


def pending_reminders(db: Session, booking: Booking) -> set[tuple[ReminderKind, datetime]]:
    rows = db.execute(
        select(Reminder.kind, Reminder.send_at).where(
            Reminder.booking_id == booking.id, Reminder.status == ReminderStatus.PENDING
        )
    )
    return {(kind, send_at) for kind, send_at in rows}


class TestApi:
    def book_over_http(self, client: FlaskClient, practitioner: Practitioner, **extra: Any) -> Any:
        body = {"practitioner_id": str(practitioner.id), "start": weekday_at(10).isoformat()}
        body |= {"mode": "home", **HOME} if extra.get("mode", "home") == "home" else {}
        return client.post("/api/v1/bookings", json=body | extra)

    def test_address_and_link_visibility_by_role(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db)
        patient = make_user(db)
        log_in_as(client, patient.email)
        created = self.book_over_http(client, practitioner)
        assert created.status_code == 201, created.get_json()
        booking_id = created.get_json()["id"]
        assert created.get_json()["address"] == HOME["address"]
        log_in_as(client, practitioner.user.email)
        seen = client.get(f"/api/v1/bookings/{booking_id}").get_json()
        assert seen["address"] == HOME["address"]  # confirmed: the practitioner may see it
        client.post(f"/api/v1/bookings/{booking_id}/cancel", json={})
        after = client.get(f"/api/v1/bookings/{booking_id}").get_json()
        assert (after["status"], after["address"]) == ("cancelled", None)
        log_in_as(client, make_user(db).email)
        assert client.get(f"/api/v1/bookings/{booking_id}").status_code == 404
        log_in_as(client, make_user(db, Role.ADMIN).email)
        assert client.get(f"/api/v1/bookings/{booking_id}").get_json()["address"] == HOME["address"]

    def test_idempotency_key_header(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db)
        log_in_as(client, make_user(db).email)
        headers = {"Idempotency-Key": "abc-123"}
        first = self.book_over_http(client, practitioner, mode="video")
        assert first.status_code == 201
        retried = {
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(14).isoformat(),
            "mode": "video",
        }
        one, two = (client.post("/api/v1/bookings", json=retried, headers=headers) for _ in "12")
        assert one.status_code == two.status_code == 201
        assert one.get_json()["id"] == two.get_json()["id"]
        taken = self.book_over_http(client, practitioner, mode="video")
        assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "slot_unavailable")
        bad = client.post("/api/v1/bookings", json={}, headers={"Idempotency-Key": "a b"})
        assert bad.status_code == 422

    def test_list_and_outcome_endpoints(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db)
        patient = make_user(db)
        log_in_as(client, patient.email)
        self.book_over_http(client, practitioner, mode="video")
        listed = client.get("/api/v1/bookings?status=confirmed").get_json()
        assert len(listed["items"]) == 1
        assert listed["items"][0]["video_url"].startswith("https://")
        booking_id = listed["items"][0]["id"]
        log_in_as(client, practitioner.user.email)
        early = client.post(f"/api/v1/bookings/{booking_id}/complete")
        assert (early.status_code, early.get_json()["error"]["code"]) == (409, "visit_not_over")


class TestCalendar:
    def test_ics_keeps_its_uid_and_cancels(self, client: FlaskClient, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        log_in_as(client, patient.email)
        first = client.get(f"/api/v1/bookings/{booking.id}/calendar.ics")
        assert first.status_code == 200
        assert first.mimetype == "text/calendar"
        text = first.get_data(as_text=True)
        assert f"UID:booking-{booking.id}@practitioner-marketplace" in text
        assert "SEQUENCE:0" in text
        assert "METHOD:PUBLISH" in text
        assert "URL:https://meet.jit.si/" in text
        bookings.cancel_booking(db, patient, booking.id, None, now=utcnow(), policy=BOOKING_POLICY)
        cancelled = client.get(f"/api/v1/bookings/{booking.id}/calendar.ics").get_data(as_text=True)
        calendar = vobject.readOne(cancelled)  # a file to import, not a request to anyone
        assert calendar.method.value == "PUBLISH"
        event = calendar.vevent
        assert (event.status.value, event.sequence.value) == ("CANCELLED", "1")
        assert event.uid.value == f"booking-{booking.id}@practitioner-marketplace"
        assert event.organizer.value == f"mailto:{client.application.config['MAIL_DEFAULT_SENDER']}"
        assert "attendee" not in event.contents

    @pytest.mark.parametrize(
        ("day", "expected_utc"),
        [
            (date(2027, 3, 26), "20270326T100000Z"),  # Friday before the clocks go forward: GMT
            (date(2027, 3, 29), "20270329T090000Z"),  # Monday after: BST, 10:00 is 09:00 UTC
        ],
    )
    def test_times_stay_right_across_a_dst_change(
        self, client: FlaskClient, db: Session, day: date, expected_utc: str
    ) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        start = datetime.combine(day, time(10), tzinfo=LONDON)
        booking = make_booking(
            db, practitioner, start, start + timedelta(hours=1), patient_id=patient.id
        )
        log_in_as(client, patient.email)
        text = client.get(f"/api/v1/bookings/{booking.id}/calendar.ics").get_data(as_text=True)
        assert f"DTSTART:{expected_utc}" in text


class TestStartedClaimedAndRetriedVisits:
    def test_a_started_visit_cannot_be_cancelled_or_moved_by_the_parties(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        started = booking.starts_at + timedelta(minutes=1)
        with pytest.raises(Conflict) as failure:
            bookings.cancel_booking(
                db, patient, booking.id, None, now=started, policy=BOOKING_POLICY
            )
        assert failure.value.code == "visit_started"
        with pytest.raises(Conflict):
            bookings.reschedule_booking(db, patient, booking.id, weekday_at(14), now=started)
        admin = make_user(db, Role.ADMIN)
        bookings.cancel_booking(db, admin, booking.id, "fault", now=started, policy=BOOKING_POLICY)

    def test_cancelling_a_claimed_visit_reopens_its_request(self, db: Session) -> None:
        start = weekday_at(10)
        request = open_request(db, start)
        practitioner = make_practitioner(db)
        booking = claim(db, practitioner, request, start)
        bookings.cancel_booking(
            db, practitioner.user, booking.id, "ill", now=utcnow(), policy=BOOKING_POLICY
        )
        db.refresh(request)
        assert request.status is RequestStatus.OPEN

    def test_the_same_instant_in_another_offset_is_the_same_retry(self, db: Session) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        first = book(db, patient, practitioner, weekday_at(10), key="tz")
        elsewhere = weekday_at(10).astimezone(ZoneInfo("Asia/Tokyo"))
        assert book(db, patient, practitioner, elsewhere, key="tz").id == first.id
