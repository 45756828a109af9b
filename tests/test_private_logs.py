"""Logs are private: a whole journey, logged at DEBUG, leaves no personal data in any line, and
every line carries the id of its request or task."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.booking.reminders import queue_due_reminders
from marketplace.http_guards import assign_request_id
from marketplace.logs import NO_ID, SQL_LOGGER, formatter
from marketplace.notifications.channels import Channels
from marketplace.notifications.models import Notification
from tests.support.accounts import PASSWORD
from tests.support.factories import make_practitioner, weekday_at
from tests.support.outbox import send

NAME, EMAIL, PHONE = "Zelda Quixote", "zelda.quixote@example.org", "+447911123456"
POSTCODE, ADDRESS = "SW1A 2AA", "12 Secret Lane, Westminster"
NOTES = "Tremor much worse in the mornings since March"


# Libraries that keep their loggers quiet unless asked: SQL (statements and parameters), the
# connection pool, the broker, rate limits, the request framework.
CHATTY = ["sqlalchemy.engine", "sqlalchemy.pool", "kombu", "celery", "flask_limiter", "werkzeug"]


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> None:
    """DEBUG everywhere, set before the test's database connection opens (SQLAlchemy decides
    whether to log a connection's statements when it opens)."""
    caplog.set_level(logging.DEBUG)
    for name in CHATTY:
        caplog.set_level(logging.DEBUG, logger=name)


def test_a_whole_journey_logs_nothing_personal(
    everything_logged: None,
    app: Flask,
    client: FlaskClient,
    db: Session,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    practitioner = make_practitioner(db)
    secrets = [
        NAME,
        EMAIL,
        PHONE,
        "7911 123456",
        "07911",
        POSTCODE,
        POSTCODE.replace(" ", ""),
        ADDRESS,
        NOTES,
        PASSWORD,
    ]
    # Everything from here on is logged at DEBUG (the fixture).
    registered = client.post(
        "/api/v1/auth/register",
        json={
            "email": EMAIL,
            "password": PASSWORD,
            "full_name": NAME,
            "role": "patient",
            "phone": PHONE,
        },
    )
    assert registered.status_code == 201, registered.get_json()
    wrong = {"email": EMAIL, "password": "wrong password!"}
    assert client.post("/api/v1/auth/login", json=wrong).status_code == 401
    right = {"email": EMAIL, "password": PASSWORD}
    assert client.post("/api/v1/auth/login", json=right).status_code == 200
    token = client.post("/api/v1/auth/tokens", json={"name": "phone"}).get_json()["token"]
    secrets.append(token)
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    secrets.append(cookie.value)
    care_request = client.post(
        "/api/v1/requests",
        json={
            "mode": "home",
            "postcode": POSTCODE,
            "address": ADDRESS,
            "specialty": "stroke",
            "earliest": weekday_at(9).isoformat(),
            "latest": weekday_at(17, days_ahead=10).isoformat(),
            "notes": NOTES,
        },
    )
    assert care_request.status_code == 201, care_request.get_json()
    request_id = care_request.get_json()["id"]
    matches = client.get(f"/api/v1/requests/{request_id}/matches")
    assert matches.status_code == 200
    home = client.post(
        "/api/v1/bookings",
        json={
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(10).isoformat(),
            "mode": "home",
            "address": ADDRESS,
            "postcode": POSTCODE,
            "request_id": request_id,
        },
    )
    assert home.status_code == 201, home.get_json()
    video = client.post(
        "/api/v1/bookings",
        json={
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(14).isoformat(),
            "mode": "video",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert video.status_code == 201, video.get_json()
    secrets.append(video.get_json()["video_url"])
    assert client.get(f"/api/v1/bookings/{home.get_json()['id']}/calendar.ics").status_code == 200
    starts = weekday_at(10)
    queue_due_reminders(db, starts - timedelta(hours=1), limit=100, sms=True)
    ids = list(db.scalars(select(Notification.id)))
    with Channels(app.config, str(tmp_path)) as channels:
        outcomes = send(app, db, ids, channels, starts - timedelta(hours=1))
    assert outcomes.get("sent", 0) >= 6  # confirmations and reminders, emails and an SMS
    assert (
        client.post(f"/api/v1/bookings/{home.get_json()['id']}/cancel", json={}).status_code == 200
    )

    # The capture works: SQL statements were logged (their parameters hidden).
    assert any(record.name == SQL_LOGGER for record in caplog.records)
    lines = [formatter("json").format(record) for record in caplog.records]
    lines += [formatter("plain").format(record) for record in caplog.records]
    for secret in secrets:
        leaks = [line for line in lines if secret in line]
        assert leaks == [], f"{secret!r} was logged"
    assert all(getattr(record, "request_id", None) for record in caplog.records)


def test_lines_carry_the_request_id(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    probe = logging.getLogger("marketplace.probe")
    with app.test_request_context(headers={"X-Request-ID": "abcdef123456"}):
        assign_request_id()
        probe.warning("in a request")
    probe.warning("outside")
    ids = {
        record.getMessage(): vars(record)["request_id"]
        for record in caplog.records
        if record.name == "marketplace.probe"
    }
    assert ids == {"in a request": "abcdef123456", "outside": NO_ID}
    assert '"request_id": "abcdef123456"' in formatter("json").format(caplog.records[0])


def test_task_lines_carry_the_task_id(app: Flask) -> None:
    seen: list[str] = []

    @app.extensions["celery"].task(name="tests.log_probe")
    def log_probe() -> None:
        make_record = logging.getLogRecordFactory()  # what every logger uses
        record = make_record("marketplace.probe", logging.INFO, __file__, 0, "in a task", (), None)
        seen.append(vars(record)["request_id"])  # set by marketplace.logs' record factory

    log_probe.apply(task_id="task-0123456789")
    assert seen == ["task-0123456789"]


def test_a_rate_limit_breach_logs_no_client_address(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    address = "203.0.113.77"
    answers = [
        client.post("/api/v1/auth/register", json={}, environ_base={"REMOTE_ADDR": address})
        for _ in range(11)
    ]
    assert answers[-1].status_code == 429
    breaches = [r for r in caplog.records if r.name == "flask-limiter" and "exceeded" in r.msg]
    assert breaches, "the breach is still logged"
    kinds = ("json", "plain")
    lines = [formatter(kind).format(record) for record in caplog.records for kind in kinds]
    assert [line for line in lines if address in line] == []
