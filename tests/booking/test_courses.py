"""Courses: weekly follow-ups after an assessment, booked all or none; a clashing week is named
with the nearest free time that week; the rest of a course can be cancelled at once."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask.testing import FlaskClient
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.booking.courses import weekly_starts
from marketplace.booking.models import Booking, Reminder
from marketplace.practitioners.models import Practitioner, VisitType
from tests.support.accounts import log_in_as
from tests.support.factories import book, make_practitioner, make_user, weekday_at

FIRST = weekday_at(10, days_ahead=8)


def assessed(db: Session) -> tuple[Any, Practitioner]:
    """A patient whose assessment with the practitioner is booked (this week)."""
    patient, practitioner = make_user(db), make_practitioner(db)
    assert book(db, patient, practitioner, weekday_at(9)).visit_type is VisitType.ASSESSMENT
    return patient, practitioner


def post_course(client: FlaskClient, practitioner: Practitioner, **fields: Any) -> Any:
    body = {
        "practitioner_id": str(practitioner.id),
        "start": FIRST.isoformat(),
        "weeks": 6,
        "mode": "video",
        **fields,
    }
    return client.post("/api/v1/courses", json=body)


def bookings_of(db: Session, patient: Any) -> int:
    return int(db.scalar(select(func.count()).where(Booking.patient_id == patient.id)) or 0)


def test_six_weekly_follow_ups_are_booked_together(client: FlaskClient, db: Session) -> None:
    patient, practitioner = assessed(db)
    log_in_as(client, patient.email)
    response = post_course(client, practitioner)
    assert response.status_code == 201, response.get_json()
    sessions = response.get_json()["sessions"]
    assert len(sessions) == 6
    assert {s["visit_type"] for s in sessions} == {"follow_up"}
    london = ZoneInfo("Europe/London")
    starts = [datetime.fromisoformat(s["start"]).astimezone(london) for s in sessions]
    assert {(s.weekday(), s.hour, s.minute) for s in starts} == {(FIRST.weekday(), 10, 0)}
    ids = [s["id"] for s in sessions]
    reminders = db.scalar(
        select(func.count()).where(Reminder.booking_id.in_([uuid.UUID(i) for i in ids]))
    )
    assert reminders == 12  # early and late for each session
    shown = client.get(f"/api/v1/courses/{response.get_json()['id']}")
    assert [s["id"] for s in shown.get_json()["sessions"]] == ids


def test_a_course_needs_an_assessment_first(client: FlaskClient, db: Session) -> None:
    patient, practitioner = make_user(db), make_practitioner(db)
    log_in_as(client, patient.email)
    refused = post_course(client, practitioner)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "assessment_required"


def test_a_clash_in_week_four_books_nothing_and_offers_the_nearest_time(
    client: FlaskClient, db: Session
) -> None:
    patient, practitioner = assessed(db)
    week_four = weekly_starts(FIRST, 6, ZoneInfo(practitioner.timezone))[3]
    book(db, make_user(db), practitioner, week_four)  # someone else has that hour
    before = bookings_of(db, patient)
    log_in_as(client, patient.email)
    refused = post_course(client, practitioner)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "course_clashes"
    [clash] = refused.get_json()["error"]["details"]["clashes"]
    assert clash["week"] == 4
    nearest = datetime.fromisoformat(clash["nearest_free"])
    assert nearest != week_four
    assert abs(nearest - week_four) <= timedelta(hours=2)  # the same day, around the taken hour
    assert bookings_of(db, patient) == before  # nothing was booked


def test_the_rest_of_a_course_is_cancelled_at_once(client: FlaskClient, db: Session) -> None:
    patient, practitioner = assessed(db)
    log_in_as(client, practitioner.user.email)  # the practitioner books it for the patient
    created = post_course(client, practitioner, practitioner_id=None, patient_id=str(patient.id))
    assert created.status_code == 201, created.get_json()
    course_id = created.get_json()["id"]
    one = created.get_json()["sessions"][1]["id"]
    assert client.post(f"/api/v1/bookings/{one}/cancel", json={}).status_code == 200
    log_in_as(client, patient.email)
    rest = client.post(f"/api/v1/courses/{course_id}/cancel", json={"reason": "Moving away"})
    assert rest.status_code == 200
    assert {s["status"] for s in rest.get_json()["sessions"]} == {"cancelled"}
    log_in_as(client, make_user(db).email)
    assert client.get(f"/api/v1/courses/{course_id}").status_code == 404


def test_weekly_starts_keep_the_local_time_across_a_clock_change() -> None:
    london = ZoneInfo("Europe/London")
    first = datetime(2027, 3, 22, 10, 0, tzinfo=london).astimezone(UTC)  # before BST begins
    starts = weekly_starts(first, 2, london)
    assert [s.astimezone(london).hour for s in starts] == [10, 10]
    assert starts[1] - starts[0] == timedelta(weeks=1, hours=-1)


def test_one_calendar_file_holds_every_session(client: FlaskClient, db: Session) -> None:
    patient, practitioner = assessed(db)
    log_in_as(client, patient.email)
    course = post_course(client, practitioner, weeks=3).get_json()
    first, *rest = course["sessions"]
    assert client.post(f"/api/v1/bookings/{first['id']}/cancel", json={}).status_code == 200
    response = client.get(f"/api/v1/courses/{course['id']}/calendar.ics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/calendar")
    events = Calendar.from_ical(response.data).walk("VEVENT")
    by_uid = {str(event["UID"]): event for event in events}
    assert set(by_uid) == {f"booking-{s['id']}@practitioner-marketplace" for s in [first, *rest]}
    statuses = {uid.split("@")[0][len("booking-") :]: str(e["STATUS"]) for uid, e in by_uid.items()}
    assert statuses == {first["id"]: "CANCELLED", **{s["id"]: "CONFIRMED" for s in rest}}
    london = ZoneInfo("Europe/London")
    starts = sorted(event.decoded("DTSTART").astimezone(london) for event in events)
    assert [(b.date() - a.date()).days for a, b in itertools.pairwise(starts)] == [7, 7]
    assert {start.time() for start in starts} == {FIRST.astimezone(london).time()}
    assert all(
        "meet.jit.si" in str(event.get("URL", ""))
        for event in events
        if str(event["STATUS"]) == "CONFIRMED"
    )
