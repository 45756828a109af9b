"""The authorization matrix: every endpoint of the URL map, for every kind of caller, against
resources owned by patient A and practitioner X, with the answer each must get.

Callers: anonymous, patient A (owns the request and the booking), patient B, practitioner X
(booked by A; also fits A's request), practitioner Y (fits the request, not booked), admin,
A's carer, and A's former carer (the grant revoked). Both carers are patient accounts of their
own: unless a row says otherwise (`carers=`), they get what patient B gets, a stranger to A.
Each call runs in a SAVEPOINT rolled back afterwards, so every caller meets the same world.
A 2xx where the table says 401/403/404 is a leak; a new endpoint without a row fails
`test_every_endpoint_is_in_the_matrix`. Field-level rules (notes, addresses, meeting links)
are checked below the table.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Role, TokenKind, User
from marketplace.booking import bookings, care_requests, courses
from marketplace.caregivers import service as carers
from marketplace.clock import business_today
from marketplace.db import utcnow
from marketplace.geo.geocoding import TableGeocoder
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import queue_notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import Mode
from marketplace.reviews import service as reviews
from tests.support.evidence_files import pdf_file
from tests.support.factories import (
    book,
    hcpc_fields,
    make_carer,
    make_practitioner,
    make_user,
    past_visit,
    profile_input,
    weekday_at,
)

ACTORS = (
    "anonymous",
    "patient_a",
    "patient_b",
    "practitioner_x",
    "practitioner_y",
    "admin",
    "carer_a",
    "ex_carer",
)
NOTES = "Private: tremor and falls at night"
ADDRESS = "7 Hidden Mews, London"


@dataclass
class World:
    tokens: dict[str, str]
    ids: dict[str, str]


def build_world(db: Session, app: Flask) -> World:
    admin = make_user(db, Role.ADMIN)
    patient_a, patient_b = make_user(db), make_user(db)
    x = make_practitioner(db, specialties=["stroke"])
    y = make_practitioner(db, specialties=["stroke"])
    pending_user = make_user(db, Role.PRACTITIONER)
    practitioners.save_profile(db, pending_user, profile_input(), business_today(), TableGeocoder())
    credential = practitioners.submit_credential(db, pending_user, hcpc_fields(), business_today())
    evidence = practitioners.add_evidence(
        db, pending_user, credential.id, io.BytesIO(pdf_file()), app.extensions["evidence_store"]
    )
    request = care_requests.create_request(
        db,
        patient_a,
        {
            "mode": Mode.HOME,
            "specialty": "stroke",
            "postcode": "SW1A 1AA",
            "address": ADDRESS,
            "latitude": None,
            "longitude": None,
            "earliest": weekday_at(9, days_ahead=4),
            "latest": weekday_at(17, days_ahead=9),
            "notes": NOTES,
        },
        TableGeocoder(),
        utcnow(),
    )
    booking = book(
        db, patient_a, x, weekday_at(10), Mode.HOME, address=ADDRESS, postcode="SW1A 1AA"
    )
    course = courses.book_course(
        db,
        patient_a,
        courses.CourseInput(weekday_at(12, days_ahead=15), 2, Mode.VIDEO, x.id),
        now=utcnow(),
        today=business_today(),
        geocoder=TableGeocoder(),
        policy=bookings.BookingPolicy(),
    )
    visited = past_visit(db, patient_a, x, weekday_at(13))
    review = reviews.review_visit(db, patient_a, visited.id, 5, "Very patient.", utcnow())
    failed_id = queue_notification(
        db,
        user_id=patient_a.id,
        template="booking_confirmed",
        subject_type="booking",
        subject_id=booking.id,
        dedupe_key=f"matrix:{uuid.uuid4()}",
        context={"role": "patient"},
    )
    failed = db.get_one(Notification, failed_id)
    failed.status = NotificationStatus.FAILED
    carer_a, grant = make_carer(db, patient_a)
    ex_carer, ended = make_carer(db, patient_a)
    carers.end_grant(db, patient_a, ended.id, utcnow())
    invitation = carers.invite_carer(db, patient_a, patient_b.email, utcnow())
    people: dict[str, User | None] = {
        "anonymous": None,
        "patient_a": patient_a,
        "patient_b": patient_b,
        "practitioner_x": x.user,
        "practitioner_y": y.user,
        "admin": admin,
        "carer_a": carer_a,
        "ex_carer": ex_carer,
    }
    tokens = {
        actor: accounts.issue_token(db, user, TokenKind.API, name=f"matrix {actor}").secret
        for actor, user in people.items()
        if user is not None
    }
    own_token = accounts.issue_token(db, patient_a, TokenKind.API, name="revocable")
    db.flush()
    ids = {
        "request": str(request.id),
        "booking": str(booking.id),
        "credential": str(credential.id),
        "evidence": str(evidence.id),
        "x": str(x.id),
        "pending": str(credential.practitioner_id),
        "notification": str(failed.id),
        "token": str(own_token.record.id),
        "review": str(review.id),
        "course": str(course.id),
        "patient_a": str(patient_a.id),
        "grant": str(grant.id),
        "code": invitation.code,
        "course_start": weekday_at(15, days_ahead=22).isoformat(),
        "start": weekday_at(11, days_ahead=5).isoformat(),
        "later": weekday_at(15).isoformat(),
        "window_end": weekday_at(17, days_ahead=8).isoformat(),
    }
    return World(tokens, ids)


# (method, path, JSON body, expected status for each of ACTORS)
#            anon pat_a pat_b  pr_x  pr_y admin, carers=(carer_a, ex_carer)
MATRIX: list[tuple[str, str, dict[str, Any] | None, tuple[int, ...]]] = []


def row(
    method: str,
    path: str,
    body: dict[str, Any] | None,
    *expected: int,
    carers: tuple[int, int] | None = None,
) -> None:
    assert len(expected) == len(ACTORS) - 2, path
    as_strangers = (expected[ACTORS.index("patient_b")],) * 2
    MATRIX.append((method, path, body, (*expected, *(carers or as_strangers))))


PROFILE = {
    "profession": "physiotherapist",
    "specialties": ["stroke"],
    "modes": ["video"],
    "session_minutes": 60,
    "price_pence": 5000,
}
WEEK = {
    "weekly": [{"weekday": 0, "start": "09:00", "end": "12:00", "modes": ["video"]}],
    "exceptions": [],
}

# Public
row("GET", "/healthz", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/v1/openapi.json", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/docs", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/docs/assets/swagger-ui-bundle.js", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/v1/specialties", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/v1/practitioners/{x}", None, 200, 200, 200, 200, 200, 200)
row("GET", "/api/v1/practitioners/{pending}", None, 404, 404, 404, 404, 404, 404)
row("GET", "/api/v1/practitioners/{x}/slots", None, 200, 200, 200, 200, 200, 200)
NEW_PERSON = {
    "email": "new-person@example.org",
    "password": "a-long-new-password",
    "full_name": "New Person",
    "role": "patient",
}
row("POST", "/api/v1/auth/register", NEW_PERSON, 201, 201, 201, 201, 201, 201)
row("POST", "/api/v1/auth/login", {"email": "nobody@example.org", "password": "wrong-password"},
    401, 401, 401, 401, 401, 401)  # fmt: skip
# Any account
row("POST", "/api/v1/auth/logout", None, 401, 204, 204, 204, 204, 204)
row("GET", "/api/v1/auth/tokens", None, 401, 200, 200, 200, 200, 200)
row("POST", "/api/v1/auth/tokens", {"name": "cli"}, 401, 201, 201, 201, 201, 201)
row("DELETE", "/api/v1/auth/tokens/{token}", None, 401, 204, 404, 404, 404, 404)
row("GET", "/api/v1/me", None, 401, 200, 200, 200, 200, 200)
row("GET", "/api/v1/me/export", None, 401, 200, 200, 200, 200, 200)
WRONG_CURRENT = {"current_password": "wrong-password", "new_password": "a-new-long-password"}
row("POST", "/api/v1/me/password", WRONG_CURRENT, 401, 422, 422, 422, 422, 422)
row("DELETE", "/api/v1/me", {"password": "wrong-password"}, 401, 422, 422, 422, 422, 409)
# Practitioners' own things
row("GET", "/api/v1/practitioners/me", None, 401, 403, 403, 200, 200, 403)
row("PUT", "/api/v1/practitioners/me", PROFILE, 401, 403, 403, 200, 200, 403)
row("GET", "/api/v1/practitioners/me/availability", None, 401, 403, 403, 200, 200, 403)
row("PUT", "/api/v1/practitioners/me/availability", WEEK, 401, 403, 403, 200, 200, 403)
row("POST", "/api/v1/practitioners/me/credentials", {"kind": "hcpc", "number": "PH777777"},
    401, 403, 403, 201, 201, 403)  # fmt: skip
row("POST", "/api/v1/practitioners/me/credentials/{credential}/evidence", None,
    401, 403, 403, 404, 404, 403)  # fmt: skip
row("GET", "/api/v1/practitioners/me/credentials/{credential}/evidence/{evidence}", None,
    401, 403, 403, 404, 404, 403)  # fmt: skip
row("GET", "/api/v1/practitioners/me/open-requests", None, 401, 403, 403, 200, 200, 403)
# Care requests (A's)
row("POST", "/api/v1/requests", {"mode": "video", "specialty": "stroke",
    "earliest": "{start}", "latest": "{window_end}"}, 401, 201, 201, 403, 403, 403)  # fmt: skip
row("POST", "/api/v1/requests", {"patient_id": "{patient_a}", "mode": "video",
    "specialty": "stroke", "earliest": "{start}", "latest": "{window_end}"},
    401, 201, 404, 403, 403, 403, carers=(201, 404))  # fmt: skip
row("GET", "/api/v1/requests/{request}", None, 401, 200, 404, 404, 404, 200, carers=(200, 404))
row("GET", "/api/v1/requests/{request}/matches", None, 401, 200, 404, 403, 403, 403,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/requests/{request}/withdraw", None, 401, 200, 404, 403, 403, 403,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/requests/{request}/claim", {"start": "{start}"}, 401, 403, 403, 201, 201, 403)
# Bookings (A with X)
row("POST", "/api/v1/bookings", {"practitioner_id": "{x}", "start": "{later}", "mode": "video"},
    401, 201, 201, 403, 403, 403)  # fmt: skip
row("POST", "/api/v1/bookings", {"patient_id": "{patient_a}", "practitioner_id": "{x}",
    "start": "{later}", "mode": "video"}, 401, 201, 404, 403, 403, 403,
    carers=(201, 404))  # fmt: skip
row("GET", "/api/v1/bookings", None, 401, 200, 200, 200, 200, 403)
row("GET", "/api/v1/bookings/{booking}", None, 401, 200, 404, 200, 404, 200, carers=(200, 404))
row("GET", "/api/v1/bookings/{booking}/calendar.ics", None, 401, 200, 404, 200, 404, 403,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/bookings/{booking}/cancel", {}, 401, 200, 404, 200, 404, 200,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/bookings/{booking}/reschedule", {"start": "{later}"},
    401, 200, 404, 200, 404, 403, carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/bookings/{booking}/complete", None, 401, 403, 403, 409, 404, 403)
row("POST", "/api/v1/bookings/{booking}/no-show", None, 401, 403, 403, 409, 404, 403)
# Courses (A's, with X, after the assessment that is A's booking)
COURSE = {"practitioner_id": "{x}", "start": "{course_start}", "weeks": 2, "mode": "video"}
row("POST", "/api/v1/courses", COURSE, 401, 201, 409, 422, 422, 403)
row("POST", "/api/v1/courses", {**COURSE, "patient_id": "{patient_a}"},  # Y never saw A: 404
    401, 201, 404, 201, 404, 403, carers=(201, 404))  # fmt: skip
row("GET", "/api/v1/courses/{course}", None, 401, 200, 404, 200, 404, 200, carers=(200, 404))
row("GET", "/api/v1/courses/{course}/calendar.ics", None, 401, 200, 404, 200, 404, 403,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/courses/{course}/cancel", {}, 401, 200, 404, 200, 404, 403,
    carers=(200, 404))  # fmt: skip
# Reviews (A's completed visit with X)
row("POST", "/api/v1/bookings/{booking}/review", {"rating": 5}, 401, 409, 404, 403, 403, 403,
    carers=(409, 404))  # fmt: skip
# Carers (A's carer's grant; an invitation from A to B's address)
row("GET", "/api/v1/me/carers", None, 401, 200, 200, 403, 403, 403)
row("POST", "/api/v1/me/carers", {"email": "helper@example.org"}, 401, 201, 201, 403, 403, 403)
row("POST", "/api/v1/carers/{grant}/revoke", None, 401, 200, 404, 403, 403, 403,
    carers=(200, 404))  # fmt: skip
row("POST", "/api/v1/carers/accept", {"code": "{code}"}, 401, 403, 200, 403, 403, 403,
    carers=(403, 403))  # fmt: skip
row("GET", "/api/v1/me/caring-for", None, 401, 200, 200, 403, 403, 403)
row("POST", "/api/v1/reviews/{review}/reply", {"reply": "Thank you."}, 401, 403, 403, 200, 404, 403)
row("POST", "/api/v1/admin/reviews/{review}/hide", {"reason": "Names a patient."},
    401, 403, 403, 403, 403, 200)  # fmt: skip
row("GET", "/api/v1/practitioners/{x}/reviews", None, 200, 200, 200, 200, 200, 200)
# Admin API
row("GET", "/api/v1/admin/credentials", None, 401, 403, 403, 403, 403, 200)
row("POST", "/api/v1/admin/credentials/{credential}/decision",
    {"decision": "reject", "reason": "No."}, 401, 403, 403, 403, 403, 200)  # fmt: skip
row("GET", "/api/v1/admin/credentials/{credential}/evidence/{evidence}", None,
    401, 403, 403, 403, 403, 200)  # fmt: skip
row(
    "POST",
    "/api/v1/admin/practitioners/{x}/suspend",
    {"reason": "Complaint."},
    401,
    403,
    403,
    403,
    403,
    200,
)
row(
    "POST",
    "/api/v1/admin/practitioners/{x}/reinstate",
    {"reason": "Cleared."},
    401,
    403,
    403,
    403,
    403,
    409,
)
row("GET", "/api/v1/admin/audit", None, 401, 403, 403, 403, 403, 200)
row("GET", "/api/v1/admin/notifications", None, 401, 403, 403, 403, 403, 200)
row("POST", "/api/v1/admin/notifications/{notification}/retry", None, 401, 403, 403, 403, 403, 200)
# Back office pages (signed-out visitors are sent to sign in; posts without a CSRF token fail)
row("GET", "/admin/", None, 302, 403, 403, 403, 403, 302)
row("GET", "/admin/login", None, 200, 200, 200, 200, 200, 200)
row("POST", "/admin/login", None, 400, 400, 400, 400, 400, 400)
row("POST", "/admin/logout", None, 302, 403, 403, 403, 403, 403)
row("GET", "/admin/credentials", None, 302, 403, 403, 403, 403, 200)
row("GET", "/admin/credentials/{credential}", None, 302, 403, 403, 403, 403, 200)
row("POST", "/admin/credentials/{credential}/approve", None, 302, 403, 403, 403, 403, 422)
row("POST", "/admin/credentials/{credential}/reject", None, 302, 403, 403, 403, 403, 422)
row(
    "GET", "/admin/credentials/{credential}/evidence/{evidence}", None, 302, 403, 403, 403, 403, 200
)
row("GET", "/admin/practitioners", None, 302, 403, 403, 403, 403, 200)
row("POST", "/admin/practitioners/{x}/suspend", None, 302, 403, 403, 403, 403, 422)
row("POST", "/admin/practitioners/{x}/reinstate", None, 302, 403, 403, 403, 403, 422)
row("GET", "/admin/notifications", None, 302, 403, 403, 403, 403, 200)
row("POST", "/admin/notifications/{notification}/retry", None, 302, 403, 403, 403, 403, 403)
row("GET", "/admin/audit", None, 302, 403, 403, 403, 403, 200)
row("GET", "/static/admin.css", None, 200, 200, 200, 200, 200, 200)


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    return value


def call(
    client: FlaskClient,
    world: World,
    actor: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> int:
    headers = {}
    if actor != "anonymous":
        headers["Authorization"] = f"Bearer {world.tokens[actor]}"
    url = _fill(path, world.ids)
    payload = _fill(body, world.ids)
    if path.endswith("/evidence") and method == "POST":
        response = client.post(
            url,
            headers=headers,
            content_type="multipart/form-data",
            data={"file": (io.BytesIO(pdf_file()), "x.pdf")},
        )
    elif payload is None:
        response = client.open(url, method=method, headers=headers)
    else:
        response = client.open(url, method=method, headers=headers, json=payload)
    return response.status_code


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_each_caller_gets_the_expected_answer(
    app: Flask,
    client: FlaskClient,
    db: Session,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    expected: tuple[int, ...],
) -> None:
    world = build_world(db, app)
    answers = {}
    for actor in ACTORS:
        savepoint = db.begin_nested()
        db.connection()  # emits the SAVEPOINT now, before the request's own
        try:
            answers[actor] = call(client, world, actor, method, path, body)
        finally:
            savepoint.rollback()
            db.expire_all()
    assert answers == dict(zip(ACTORS, expected, strict=True))


def test_every_endpoint_is_in_the_matrix(app: Flask) -> None:
    rows = {(method, _rule_of(path)) for method, path, _, _ in MATRIX}
    endpoints = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert endpoints - rows == set(), "endpoints without a row in the matrix"


def _rule_of(path: str) -> str:
    """The URL rule a matrix path stands for."""
    rules = {
        "{x}": "<uuid:practitioner_id>",
        "{pending}": "<uuid:practitioner_id>",
        "{request}": "<uuid:request_id>",
        "{booking}": "<uuid:booking_id>",
        "{credential}": "<uuid:credential_id>",
        "{evidence}": "<uuid:evidence_id>",
        "{notification}": "<uuid:notification_id>",
        "{token}": "<uuid:token_id>",
        "{review}": "<uuid:review_id>",
        "{course}": "<uuid:course_id>",
        "{grant}": "<uuid:grant_id>",
    }
    for placeholder, rule in rules.items():
        path = path.replace(placeholder, rule)
    if path.startswith("/admin/practitioners/"):  # one page rule for both changes
        path = path.rsplit("/", 1)[0] + "/<any(suspend, reinstate):change>"
    if path.startswith("/static/"):
        return "/static/<path:filename>"
    if path.startswith("/api/docs/assets/"):
        return "/api/docs/assets/<filename>"
    return path


class TestFieldLevel:
    def get(self, client: FlaskClient, world: World, actor: str, path: str) -> Any:
        bearer = {"Authorization": f"Bearer {world.tokens[actor]}"}
        response = client.get(_fill(path, world.ids), headers=bearer)
        assert response.status_code == 200, (actor, path, response.get_json())
        return response.get_json()

    def test_practitioners_see_open_requests_without_notes_name_or_full_postcode(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        world = build_world(db, app)
        for actor in ("practitioner_x", "practitioner_y"):
            feed = self.get(client, world, actor, "/api/v1/practitioners/me/open-requests")
            text = str(feed)
            assert world.ids["request"] in text
            assert NOTES not in text
            assert ADDRESS not in text
            assert "SW1A 1AA" not in text
            assert "Test Person" not in text

    def test_the_address_goes_to_the_booked_practitioner_only_while_confirmed(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        world = build_world(db, app)
        path = "/api/v1/bookings/{booking}"
        for actor in ("patient_a", "practitioner_x", "admin"):
            assert self.get(client, world, actor, path)["address"] == ADDRESS
        bearer = {"Authorization": f"Bearer {world.tokens['patient_a']}"}
        cancel = client.post(_fill(f"{path}/cancel", world.ids), json={}, headers=bearer)
        assert cancel.status_code == 200
        assert self.get(client, world, "practitioner_x", path).get("address") is None
        assert self.get(client, world, "patient_a", path)["address"] == ADDRESS
        for actor in ("patient_b", "practitioner_y"):
            listed = self.get(client, world, actor, "/api/v1/bookings")
            assert world.ids["booking"] not in str(listed)

    def test_only_the_patient_and_admins_read_the_notes(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        world = build_world(db, app)
        for actor in ("patient_a", "admin"):
            assert self.get(client, world, actor, "/api/v1/requests/{request}")["notes"] == NOTES
        public = self.get(client, world, "patient_b", "/api/v1/practitioners/{x}")
        assert "SW1A 1AA" not in str(public)  # the base is shown by outward code only
