"""The outbox and its dispatch, on the database under test: leases, claims, retries with backoff,
failures for admins, reminders queued or dropped, and what the messages say (and never say)."""

from __future__ import annotations

import email
import email.policy
import json
import smtplib
import uuid
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import vobject
from flask import Flask
from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.booking import bookings
from marketplace.booking.models import Booking, CareRequest, Reminder, ReminderStatus
from marketplace.booking.reminders import NOT_HELD, VISIT_STARTED, queue_due_reminders
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.db import utcnow
from marketplace.messages import delivery
from marketplace.messages.compose import Sources, compose, local_time
from marketplace.notifications import service as outbox
from marketplace.notifications.channels import Channels, OutgoingMessage, PermanentFailure
from marketplace.notifications.models import Channel, Notification, NotificationStatus
from marketplace.practitioners.models import Mode
from marketplace.privacy.service import erase_account
from marketplace.storage import FilesystemStore
from tests.support.accounts import PASSWORD, log_in_as
from tests.support.factories import book, make_practitioner, make_user, weekday_at
from tests.support.outbox import POLICY, send

HOME = {"address": "12 Private Road, London", "postcode": "SW1A 1AA"}


class RecordingChannels(Channels):
    """Channels that keep what they were given, or fail as told."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.sent: list[tuple[Channel, OutgoingMessage]] = []
        self.failure = failure

    def send(self, channel: Channel, message: OutgoingMessage) -> None:
        if self.failure is not None:
            raise self.failure
        self.sent.append((channel, message))


def queue(db: Session, key: str | None = None, **fields: Any) -> uuid.UUID:
    user = make_user(db)
    notification_id = outbox.queue_notification(
        db,
        user_id=user.id,
        template="practitioner_reinstated",
        subject_type="practitioner",
        subject_id=uuid.uuid4(),
        dedupe_key=key or f"test:{uuid.uuid4()}",
        context={"reason": "Cleared."},
        **fields,
    )
    assert notification_id is not None
    return notification_id


def row(db: Session, notification_id: uuid.UUID) -> Notification:
    notification = db.get_one(Notification, notification_id)
    db.refresh(notification)
    return notification


def expire_handover(db: Session, notification_id: uuid.UUID) -> None:
    db.execute(
        update(Notification)
        .where(Notification.id == notification_id)
        .values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )


class TestQueueAndDispatch:
    def test_a_dedupe_key_queues_one_message(self, db: Session) -> None:
        queue(db, "same-key")
        user = make_user(db)
        again = outbox.queue_notification(
            db,
            user_id=user.id,
            template="practitioner_reinstated",
            subject_type="practitioner",
            subject_id=uuid.uuid4(),
            dedupe_key="same-key",
        )
        assert again is None
        assert db.query(Notification).filter_by(dedupe_key="same-key").count() == 1

    def test_new_rows_wait_for_their_after_commit_task_before_the_dispatcher_sends_them(
        self, db: Session
    ) -> None:
        notification_id = queue(db)
        now = utcnow()
        assert notification_id not in outbox.dispatch_due(db, now, POLICY)
        expire_handover(db, notification_id)  # that task never came (the broker was down)
        assert notification_id in outbox.dispatch_due(db, now, POLICY)
        assert row(db, notification_id).lease_expires_at == now + POLICY.handover
        assert notification_id not in outbox.dispatch_due(db, now, POLICY)  # leased now

    def test_a_task_lost_with_the_broker_is_replaced_after_the_handover_not_the_send_lease(
        self, db: Session
    ) -> None:
        assert POLICY.handover < POLICY.lease
        lost, claimed = queue(db), queue(db)
        now = utcnow()
        delivery.claim_for_sending(db, [claimed], now, POLICY)  # its sender is at work
        just_before = now + POLICY.handover - timedelta(seconds=5)
        assert outbox.dispatch_due(db, just_before, POLICY) == []
        after_handover = now + POLICY.handover + timedelta(seconds=1)
        assert outbox.dispatch_due(db, after_handover, POLICY) == [lost]  # not the one in flight
        assert row(db, claimed).status is NotificationStatus.SENDING
        # The replacement task and the lost one, should it ever come, claim it once between them.
        assert len(delivery.claim_for_sending(db, [lost], after_handover, POLICY)) == 1
        assert delivery.claim_for_sending(db, [lost], after_handover, POLICY) == []

    def test_a_sender_that_died_leaves_a_row_the_dispatcher_hands_out_again(
        self, db: Session
    ) -> None:
        notification_id = queue(db)
        now = utcnow()
        (claimed,) = delivery.claim_for_sending(db, [notification_id], now, POLICY)
        assert claimed.id == notification_id
        assert notification_id not in outbox.dispatch_due(db, now, POLICY)
        later = now + POLICY.lease + timedelta(seconds=1)
        assert notification_id in outbox.dispatch_due(db, later, POLICY)
        assert row(db, notification_id).status is NotificationStatus.PENDING

    def test_a_row_whose_sender_died_on_every_attempt_fails(self, db: Session) -> None:
        notification_id = queue(db)
        now = utcnow()
        for _ in range(POLICY.max_attempts):
            assert delivery.claim_for_sending(db, [notification_id], now, POLICY)
            now += POLICY.lease + timedelta(seconds=1)
            outbox.dispatch_due(db, now, POLICY)
        failed = row(db, notification_id)
        assert failed.status is NotificationStatus.FAILED
        assert failed.last_error is not None

    def test_the_dispatcher_takes_at_most_its_limit(self, db: Session) -> None:
        ids = [queue(db) for _ in range(5)]
        for notification_id in ids:
            expire_handover(db, notification_id)
        small = outbox.DeliveryPolicy(dispatch_limit=3)
        first = outbox.dispatch_due(db, utcnow(), small)
        second = outbox.dispatch_due(db, utcnow(), small)
        assert len(first) == 3
        assert set(first) | set(second) >= set(ids)
        assert not set(first) & set(second)


class TestSending:
    def test_sent_once_however_often_the_task_runs(self, app: Flask, db: Session) -> None:
        notification_id = queue(db)
        channels = RecordingChannels()
        assert send(app, db, [notification_id], channels, utcnow()) == {"sent": 1}
        assert send(app, db, [notification_id], channels, utcnow()) == {}
        assert len(channels.sent) == 1
        sent = row(db, notification_id)
        assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 1)

    def test_transient_failures_back_off_then_fail_for_an_admin(
        self, app: Flask, db: Session
    ) -> None:
        notification_id = queue(db)
        down = RecordingChannels(ConnectionRefusedError("SMTP down"))
        now = utcnow()
        delays = []
        for _ in range(POLICY.max_attempts - 1):
            assert send(app, db, [notification_id], down, now) == {"retrying": 1}
            waiting = row(db, notification_id)
            assert waiting.status is NotificationStatus.PENDING
            # Not before its backoff is over, by the dispatcher or a stray task.
            assert send(app, db, [notification_id], down, now) == {}
            assert notification_id not in outbox.dispatch_due(db, now, POLICY)
            delays.append(waiting.due_at - now)
            now = waiting.due_at
        assert delays == [timedelta(minutes=1), timedelta(minutes=2)]
        assert send(app, db, [notification_id], down, now) == {"failed": 1}
        failed = row(db, notification_id)
        assert failed.status is NotificationStatus.FAILED
        assert "SMTP down" in (failed.last_error or "")

    def test_failures_are_kept_without_what_the_server_echoed(
        self, app: Flask, db: Session, caplog: pytest.LogCaptureFixture
    ) -> None:
        notification_id = queue(db)
        busy = smtplib.SMTPRecipientsRefused({"pat@example.org": (450, b"<pat@example.org> busy")})
        assert send(app, db, [notification_id], RecordingChannels(busy), utcnow()) == {
            "retrying": 1
        }
        assert row(db, notification_id).last_error == "SMTPRecipientsRefused: 450"
        assert "pat@example.org" not in caplog.text

    def test_a_permanent_failure_is_not_retried(self, app: Flask, db: Session) -> None:
        notification_id = queue(db)
        refused = RecordingChannels(PermanentFailure("the mail server refused the address"))
        assert send(app, db, [notification_id], refused, utcnow()) == {"failed": 1}
        assert row(db, notification_id).attempts == 1

    def test_admins_list_failed_messages_and_retry_them(
        self, app: Flask, db: Session, client: FlaskClient
    ) -> None:
        notification_id = queue(db)
        send(app, db, [notification_id], RecordingChannels(PermanentFailure("no")), utcnow())
        log_in_as(client, make_user(db, Role.ADMIN).email)
        listed = client.get("/api/v1/admin/notifications?status=failed").get_json()
        assert [item["id"] for item in listed["items"]] == [str(notification_id)]
        assert (
            client.post(f"/api/v1/admin/notifications/{notification_id}/retry").status_code == 200
        )
        again = client.post(f"/api/v1/admin/notifications/{notification_id}/retry")
        assert again.get_json()["error"]["code"] == "not_failed"
        channels = RecordingChannels()
        assert send(app, db, [notification_id], channels, utcnow()) == {"sent": 1}

    def test_only_admins_see_the_outbox(self, db: Session, client: FlaskClient) -> None:
        log_in_as(client, make_user(db).email)
        assert client.get("/api/v1/admin/notifications").status_code == 403


class TestReminders:
    def test_due_reminders_become_messages_to_both_parties_once(
        self, app: Flask, db: Session
    ) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        patient.phone = "+447700900123"
        booking = book(db, patient, practitioner, weekday_at(10))
        late = booking.starts_at - timedelta(hours=1)
        report = queue_due_reminders(db, late, limit=100, sms=True)
        assert (report.queued, report.dropped) == (2, 0)
        assert queue_due_reminders(db, late, limit=100, sms=True).handled == 0
        sent = reminder_messages(db, booking)
        assert sorted(sent) == sorted(
            [
                ("reminder_early", Channel.EMAIL, patient.id),
                ("reminder_early", Channel.EMAIL, practitioner.user_id),
                ("reminder_late", Channel.EMAIL, patient.id),
                ("reminder_late", Channel.SMS, patient.id),  # the practitioner has no phone
                ("reminder_late", Channel.EMAIL, practitioner.user_id),
            ]
        )

    def test_a_reminder_due_after_the_visit_started_is_dropped_with_the_reason(
        self, db: Session
    ) -> None:
        booking = book(db, make_user(db), make_practitioner(db), weekday_at(10))
        after_start = booking.starts_at + timedelta(minutes=1)
        assert queue_due_reminders(db, after_start, limit=100, sms=False).dropped == 2
        reasons = db.scalars(
            select(Reminder.dropped_reason).where(Reminder.booking_id == booking.id)
        )
        assert set(reasons) == {VISIT_STARTED}
        assert reminder_messages(db, booking) == []

    def test_a_cancelled_visit_gets_no_reminder(self, db: Session) -> None:
        patient = make_user(db)
        booking = book(db, patient, make_practitioner(db), weekday_at(10))
        bookings.cancel_booking(
            db, patient, booking.id, None, now=utcnow(), policy=bookings.DEFAULT_POLICY
        )
        assert queue_due_reminders(db, booking.starts_at, limit=100, sms=False).handled == 0
        assert reminder_messages(db, booking) == []

    def test_queued_reminder_messages_are_dropped_when_the_visit_is_cancelled_or_moves(
        self, app: Flask, db: Session
    ) -> None:
        patient = make_user(db)
        booking = book(db, patient, make_practitioner(db), weekday_at(10))
        queue_due_reminders(db, booking.starts_at - timedelta(hours=1), limit=100, sms=False)
        bookings.reschedule_booking(db, patient, booking.id, weekday_at(11), now=utcnow())
        statuses = db.scalars(
            select(Notification.status).where(Notification.template.like("reminder_%"))
        ).all()
        assert set(statuses) == {NotificationStatus.DROPPED}
        an_hour_before = weekday_at(11) - timedelta(hours=1)
        assert queue_due_reminders(db, an_hour_before, limit=100, sms=False).queued == 2

    def test_a_queued_reminder_is_not_sent_once_its_visit_has_started(
        self, app: Flask, db: Session
    ) -> None:
        booking = book(db, make_user(db), make_practitioner(db), weekday_at(10))
        queue_due_reminders(db, booking.starts_at - timedelta(hours=1), limit=100, sms=False)
        ids = list(
            db.scalars(select(Notification.id).where(Notification.template == "reminder_late"))
        )
        channels = RecordingChannels()
        assert send(app, db, ids, channels, booking.starts_at) == {"dropped": 2}
        assert channels.sent == []


def reminder_messages(db: Session, booking: Booking) -> list[tuple[str, Channel, uuid.UUID]]:
    rows = db.execute(
        select(Notification.template, Notification.channel, Notification.user_id).where(
            Notification.subject_id == booking.id, Notification.template.like("reminder_%")
        )
    )
    return [(template, channel, user_id) for template, channel, user_id in rows]


class TestMessages:
    def compose_all(
        self, app: Flask, db: Session, booking: Booking
    ) -> dict[tuple[str, ...], OutgoingMessage]:
        queue_due_reminders(db, booking.starts_at - timedelta(hours=1), limit=100, sms=True)
        messages: dict[tuple[str, ...], OutgoingMessage] = {}
        with app.test_request_context():
            for notification in db.scalars(
                select(Notification).where(Notification.subject_id == booking.id)
            ):
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                key = (notification.template, notification.context["role"])
                messages[key if notification.channel is Channel.EMAIL else (*key, "sms")] = message
        return messages

    def test_home_visit_messages_give_the_address_to_the_practitioner_and_no_notes(
        self, app: Flask, db: Session
    ) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        patient.phone = "+447700900123"
        practitioner.timezone = "Europe/Paris"
        request = CareRequest(
            patient_id=patient.id,
            mode=Mode.HOME,
            specialty="stroke",
            postcode="SW1A 1AA",
            latitude=51.5,
            longitude=-0.14,
            earliest=weekday_at(9),
            latest=weekday_at(17),
            notes="Left-sided weakness after a stroke in March",
        )
        db.add(request)
        db.flush()
        booking = book(
            db, patient, practitioner, weekday_at(10), Mode.HOME, request_id=request.id, **HOME
        )
        messages = self.compose_all(app, db, booking)
        assert len(messages) == 7  # confirmed, early and late reminders to both; one SMS
        for message in messages.values():
            for text in (message.text, message.html or ""):
                assert "weakness" not in text
                assert "stroke" not in text.lower()
        for template in ("booking_confirmed", "reminder_early", "reminder_late"):
            assert "12 Private Road" in messages[(template, "practitioner")].text
            assert "12 Private Road" not in messages[(template, "patient")].text
        assert "12 Private Road" not in messages[("reminder_late", "patient", "sms")].text
        for role, zone in (("practitioner", "Europe/Paris"), ("patient", "Europe/London")):
            local = booking.starts_at.astimezone(ZoneInfo(zone))
            text = messages[("booking_confirmed", role)].text
            assert f"{local:%B %Y at %H:%M} ({local:%Z})" in text

    def test_video_links_go_to_both_and_the_confirmation_carries_a_calendar_file(
        self, app: Flask, db: Session
    ) -> None:
        practitioner, patient = make_practitioner(db), make_user(db)
        booking = book(db, patient, practitioner, weekday_at(10))
        messages = self.compose_all(app, db, booking)
        link = f"/{booking.video_room}"
        for role in ("patient", "practitioner"):
            confirmation = messages[("booking_confirmed", role)]
            assert link in confirmation.text
            assert f'href="https://meet.jit.si{link}"' in (confirmation.html or "")
            assert link in messages[("reminder_late", role)].text
            (attachment,) = confirmation.attachments
            event = Calendar.from_ical(attachment.data).walk("VEVENT")[0]
            assert event.decoded("dtstart") == booking.starts_at
            assert str(event["uid"]) == f"booking-{booking.id}@practitioner-marketplace"

    def test_each_message_describes_its_own_event_though_others_followed_before_sending(
        self, app: Flask, db: Session
    ) -> None:
        patient = make_user(db)
        starts = [weekday_at(10), weekday_at(11), weekday_at(14)]
        booking = book(db, patient, make_practitioner(db), starts[0])
        for start in starts[1:]:
            bookings.reschedule_booking(db, patient, booking.id, start, now=utcnow())
        bookings.cancel_booking(
            db, patient, booking.id, None, now=utcnow(), policy=bookings.DEFAULT_POLICY
        )
        told = []
        with app.test_request_context():
            for notification in db.scalars(
                select(Notification).where(Notification.user_id == patient.id)
            ):
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                (attachment,) = message.attachments
                calendar = Calendar.from_ical(attachment.data)
                event = calendar.walk("VEVENT")[0]
                start = event.decoded("dtstart")
                assert local_time(start, BUSINESS_ZONE) in message.text
                told.append(
                    (
                        int(event.decoded("sequence")),
                        notification.template,
                        start,
                        str(calendar["method"]),
                        str(event["status"]),
                    )
                )
        assert sorted(told) == [
            (0, "booking_confirmed", starts[0], "REQUEST", "CONFIRMED"),
            (1, "booking_rescheduled", starts[1], "REQUEST", "CONFIRMED"),
            (2, "booking_rescheduled", starts[2], "REQUEST", "CONFIRMED"),
            (3, "booking_cancelled", starts[2], "CANCEL", "CANCELLED"),
        ]

    def test_a_row_queued_before_facts_were_kept_is_written_from_the_booking_as_it_is(
        self, app: Flask, db: Session
    ) -> None:
        patient = make_user(db)
        booking = book(db, patient, make_practitioner(db), weekday_at(10))
        bookings.reschedule_booking(db, patient, booking.id, weekday_at(11), now=utcnow())
        confirmation = db.scalars(
            select(Notification).where(
                Notification.user_id == patient.id, Notification.template == "booking_confirmed"
            )
        ).one()
        confirmation.context = {"role": "patient"}  # as rows were queued until now
        with app.test_request_context():
            message = compose(confirmation, Sources.load(db, [confirmation]))
        assert message is not None
        assert local_time(weekday_at(11), BUSINESS_ZONE) in message.text
        (attachment,) = message.attachments
        assert Calendar.from_ical(attachment.data).walk("VEVENT")[0].decoded("sequence") == 1

    def test_a_message_queued_before_erasure_goes_without_the_address_or_the_link(
        self, app: Flask, db: Session, tmp_path: Path
    ) -> None:
        """The facts kept with a row say whether to show the address and the link, and hold
        neither: erasure clears them from the booking, and so from every message still to go."""
        practitioner, patient = make_practitioner(db), make_user(db)
        book(db, patient, practitioner, weekday_at(10), Mode.HOME, **HOME)
        video = book(db, patient, practitioner, weekday_at(14))
        assert video.video_room is not None
        rows = db.scalars(
            select(Notification).where(Notification.user_id == practitioner.user_id)
        ).all()
        for kept in (json.dumps(notification.context) for notification in rows):
            assert "Private Road" not in kept
            assert video.video_room not in kept
        with app.test_request_context():
            before = [compose(n, Sources.load(db, [n])) for n in rows]
        assert any("12 Private Road" in (message.text if message else "") for message in before)
        assert any(video.video_room in (message.text if message else "") for message in before)
        now = utcnow()
        erase_account(
            db,
            patient,
            PASSWORD,
            now=now,
            today=business_today(now),
            policy=bookings.DEFAULT_POLICY,
            evidence_store=FilesystemStore(tmp_path),
        )
        db.expire_all()
        with app.test_request_context():
            for notification in rows:
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                for attachment in message.attachments:
                    assert b"Private Road" not in attachment.data
                assert "Private Road" not in message.text
                assert "meet.jit.si" not in message.text

    def test_every_booking_message_links_to_the_visits_page(
        self, app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(app.config, "PUBLIC_BASE_URL", "https://care.example.org")
        patient = make_user(db)
        patient.phone = "+447700900123"
        booking = book(db, patient, make_practitioner(db), weekday_at(10))
        bookings.reschedule_booking(db, patient, booking.id, weekday_at(11), now=utcnow())
        queue_due_reminders(db, weekday_at(11) - timedelta(hours=1), limit=100, sms=True)
        told = self.compose_each(app, db, booking)  # the reminders, while the visit holds
        bookings.cancel_booking(
            db, patient, booking.id, None, now=utcnow(), policy=bookings.DEFAULT_POLICY
        )
        told |= self.compose_each(app, db, booking, Notification.template == "booking_cancelled")
        assert {(template, channel) for template, channel, _ in told} == {
            ("booking_confirmed", Channel.EMAIL),
            ("booking_rescheduled", Channel.EMAIL),
            ("reminder_early", Channel.EMAIL),
            ("reminder_late", Channel.EMAIL),
            ("reminder_late", Channel.SMS),
            ("booking_cancelled", Channel.EMAIL),
        }
        page = f"https://care.example.org/visits/{booking.id}"
        for _, channel, message in told:
            assert page in message.text
            assert "in the app" not in message.text
            if channel is Channel.EMAIL:
                assert f'href="{page}"' in (message.html or "")
            for attachment in message.attachments:
                event = Calendar.from_ical(attachment.data).walk("VEVENT")[0]
                assert page in str(event["description"])

    def compose_each(
        self, app: Flask, db: Session, booking: Booking, *where: Any
    ) -> set[tuple[str, Channel, OutgoingMessage]]:
        told = set()
        with app.test_request_context():
            for notification in db.scalars(
                select(Notification).where(Notification.subject_id == booking.id, *where)
            ):
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                told.add((notification.template, notification.channel, message))
        return told

    def test_an_email_is_built_with_text_html_and_the_calendar(
        self, app: Flask, db: Session
    ) -> None:
        from marketplace.notifications.channels import Envelope, build_email

        booking = book(db, make_user(db), make_practitioner(db), weekday_at(10))
        message = self.compose_all(app, db, booking)[("booking_confirmed", "patient")]
        with app.app_context():
            raw = build_email(message, Envelope("a@b.c", "b.c"), utcnow()).as_bytes()
            parsed: Message = email.message_from_bytes(raw, policy=email.policy.default)
        types = [part.get_content_type() for part in parsed.walk()]
        assert {"text/plain", "text/html", "text/calendar"} <= set(types)
        assert parsed["X-Dedupe-Key"].strip() == message.dedupe_key
        assert parsed["Message-ID"] == f"<{message.notification_id}@b.c>"  # the same if resent

    def test_emailed_calendar_files_are_itip_requests_and_cancels_that_hide_other_emails(
        self, app: Flask, db: Session
    ) -> None:
        from marketplace.notifications.channels import Envelope, build_email

        practitioner, patient = make_practitioner(db), make_user(db)
        practitioner.user.full_name = "Pat Practitioner"
        booking = book(db, patient, practitioner, weekday_at(10))
        link = f"https://meet.jit.si/{booking.video_room}"
        bookings.cancel_booking(
            db, patient, booking.id, None, now=utcnow(), policy=bookings.DEFAULT_POLICY
        )
        sender = app.config["MAIL_DEFAULT_SENDER"]
        calendars = {}
        with app.test_request_context():
            for notification in db.scalars(
                select(Notification).where(Notification.user_id == patient.id)
            ):
                message = compose(notification, Sources.load(db, [notification]))
                assert message is not None
                raw = build_email(message, Envelope.from_config(app.config), utcnow()).as_bytes()
                assert practitioner.user.email.encode() not in raw
                parsed = email.message_from_bytes(raw, policy=email.policy.default)
                (part,) = [p for p in parsed.walk() if p.get_content_type() == "text/calendar"]
                data = part.get_payload(decode=True)
                assert isinstance(data, bytes)
                calendars[notification.template] = (part, vobject.readOne(data.decode()))
        for template, method in (("booking_confirmed", "REQUEST"), ("booking_cancelled", "CANCEL")):
            part, calendar = calendars[template]
            assert (part.get_param("method"), part.get_param("charset")) == (method, "utf-8")
            assert calendar.method.value == method
            event = calendar.vevent
            assert event.uid.value == f"booking-{booking.id}@practitioner-marketplace"
            assert event.dtstamp.value
            assert event.summary.value == "Video visit with Pat Practitioner"
            assert event.organizer.value == f"mailto:{sender}"
            assert event.organizer.params["CN"] == ["Practitioner marketplace"]
            attendees = {a.value: a.params["CN"][0] for a in event.attendee_list}
            assert attendees == {
                f"mailto:{patient.email}": patient.full_name,
                f"mailto:no-reply@{sender.rpartition('@')[2]}": "Pat Practitioner",
            }
        request = calendars["booking_confirmed"][1].vevent
        assert (request.sequence.value, request.status.value) == ("0", "CONFIRMED")
        assert request.dtstart.value == booking.starts_at
        assert request.url.value == request.location.value == link
        assert link in request.description.value
        cancel = calendars["booking_cancelled"][1].vevent
        assert (cancel.sequence.value, cancel.status.value) == ("1", "CANCELLED")


def test_smtp_refusing_a_recipient_for_good_is_permanent() -> None:
    from marketplace.notifications.channels import SmtpMailer

    mailer = SmtpMailer({"MAIL_DEFAULT_SENDER": "a@b.c", "MAIL_MESSAGE_ID_DOMAIN": "b.c"})

    class Refusing(smtplib.SMTP):  # never connected: no host given
        def sendmail(self, *message: Any, **options: Any) -> dict[str, tuple[int, bytes]]:
            raise smtplib.SMTPRecipientsRefused({"x@y.z": (550, b"no such user")})

    mailer.connection = Refusing()
    message = OutgoingMessage("id", "key", "x@y.z", None, "Subject", "Text")
    with pytest.raises(PermanentFailure):
        mailer.send(message)


def test_not_held_reason_is_recorded_for_a_moved_reminder(db: Session) -> None:
    patient = make_user(db)
    booking = book(db, patient, make_practitioner(db), weekday_at(10))
    db.execute(
        update(Reminder)
        .where(Reminder.booking_id == booking.id)
        .values(visit_starts_at=booking.starts_at - timedelta(hours=1))
    )
    assert queue_due_reminders(db, booking.starts_at, limit=10, sms=False).dropped == 2
    statuses = db.scalars(select(Reminder.dropped_reason).where(Reminder.booking_id == booking.id))
    assert set(statuses) == {NOT_HELD}
    assert db.scalar(select(Reminder.status).where(Reminder.booking_id == booking.id)) is (
        ReminderStatus.DROPPED
    )
