from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.booking.care_requests import expire_requests
from marketplace.booking.models import CareRequest, RequestStatus
from marketplace.db import utcnow
from tests.support.accounts import log_in_as, logged_in
from tests.support.factories import make_practitioner, make_user


def window(days_from: int = 1, days_to: int = 8) -> dict[str, str]:
    now = utcnow()
    return {
        "earliest": (now + timedelta(days=days_from)).isoformat(),
        "latest": (now + timedelta(days=days_to)).isoformat(),
    }


def home_request(**changes: Any) -> dict[str, Any]:
    return {
        "mode": "home",
        "specialty": "parkinsons",
        "postcode": "sw1a 1aa",
        "address": "Flat 2, 1 Test Street",
        "notes": "Freezing of gait since March.",
        **window(),
        **changes,
    }


def create(client: FlaskClient, **changes: Any) -> Any:
    return client.post("/api/v1/requests", json=home_request(**changes))


def test_patient_creates_an_open_home_request(client: FlaskClient) -> None:
    logged_in(client, "patient")
    response = create(client)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "open"
    assert body["postcode"] == "SW1A 1AA"
    assert body["notes"] == "Freezing of gait since March."
    assert body["latitude"] is not None


def test_video_needs_no_place(client: FlaskClient) -> None:
    logged_in(client, "patient")
    response = create(client, mode="video", postcode=None)
    assert response.status_code == 201
    assert response.get_json()["latitude"] is None


def test_coordinates_instead_of_a_postcode(client: FlaskClient, db: Session) -> None:
    logged_in(client, "patient")
    response = create(client, postcode=None, latitude=51.538, longitude=-0.1)
    assert response.status_code == 201
    assert db.get_one(CareRequest, uuid.UUID(response.get_json()["id"])).outcode == "N1"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"postcode": None}, "postcode"),
        ({"postcode": "ZZ1 1ZZ"}, "postcode"),
        ({"postcode": None, "latitude": 48.85, "longitude": 2.35}, "latitude"),  # Paris
        ({"specialty": "astrology"}, "specialty"),
        ({"mode": "teleport"}, "mode"),
        (
            {"earliest": "2030-01-02T10:00:00+00:00", "latest": "2030-01-01T10:00:00+00:00"},
            "latest",
        ),
        (
            {"earliest": "2020-01-01T10:00:00+00:00", "latest": "2020-01-02T10:00:00+00:00"},
            "latest",
        ),
        ({"earliest": "2030-01-01T10:00:00"}, "earliest"),
        ({"notes": "x" * 2001}, "notes"),
    ],
)
def test_bad_requests_are_422(client: FlaskClient, changes: dict[str, Any], field: str) -> None:
    logged_in(client, "patient")
    response = create(client, **changes)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]["fields"]


def test_only_patients_create_requests(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    assert create(client).status_code == 403


def test_a_request_is_visible_to_its_patient_and_admins_only(
    client: FlaskClient, app: Flask, db: Session
) -> None:
    logged_in(client, "patient")
    request_id = create(client).get_json()["id"]
    url = f"/api/v1/requests/{request_id}"
    assert client.get(url).get_json()["notes"]
    other_patient = app.test_client()
    logged_in(other_patient, "patient")
    assert other_patient.get(url).status_code == 404
    practitioner = app.test_client()
    logged_in(practitioner, "practitioner")
    assert practitioner.get(url).status_code == 404
    admin = app.test_client()
    log_in_as(admin, make_user(db, Role.ADMIN).email)
    assert admin.get(url).get_json()["notes"] == "Freezing of gait since March."


def test_withdraw_once(client: FlaskClient) -> None:
    logged_in(client, "patient")
    request_id = create(client).get_json()["id"]
    first = client.post(f"/api/v1/requests/{request_id}/withdraw")
    assert first.get_json()["status"] == "withdrawn"
    assert client.post(f"/api/v1/requests/{request_id}/withdraw").status_code == 409


def test_requests_expire_when_their_window_passes(client: FlaskClient, db: Session) -> None:
    logged_in(client, "patient")
    request_id = create(client, **window(1, 2)).get_json()["id"]
    assert expire_requests(db, utcnow()) == 0
    assert expire_requests(db, utcnow() + timedelta(days=3)) == 1
    stored = db.get_one(CareRequest, uuid.UUID(request_id))
    db.refresh(stored)
    assert stored.status is RequestStatus.EXPIRED
    assert expire_requests(db, utcnow() + timedelta(days=3)) == 0


class TestFeed:
    def test_shows_the_area_never_notes_or_names(
        self, client: FlaskClient, app: Flask, db: Session
    ) -> None:
        practitioner = make_practitioner(db)
        patient = app.test_client()
        logged_in(patient, "patient")
        request_id = create(patient).get_json()["id"]
        log_in_as(client, practitioner.user.email)
        items = client.get("/api/v1/practitioners/me/open-requests").get_json()["items"]
        assert [item["id"] for item in items] == [request_id]
        assert items[0]["outcode"] == "SW1A"
        assert items[0]["distance_km"] == float(int(items[0]["distance_km"]))  # whole km only
        assert set(items[0]) == {
            "id",
            "mode",
            "specialty",
            "outcode",
            "earliest",
            "latest",
            "distance_km",
        }

    def test_leaves_out_what_does_not_fit(
        self, client: FlaskClient, app: Flask, db: Session
    ) -> None:
        practitioner = make_practitioner(db, travel_radius_km=2)
        patient = app.test_client()
        logged_in(patient, "patient")
        create(patient, postcode="N1 9GU")  # about 5 km away: outside a 2 km radius
        create(patient, specialty="chronic_pain")  # not a specialty of theirs
        log_in_as(client, practitioner.user.email)
        assert client.get("/api/v1/practitioners/me/open-requests").get_json()["items"] == []

    def test_unlisted_practitioners_see_no_requests(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db, verified=False)
        log_in_as(client, practitioner.user.email)
        response = client.get("/api/v1/practitioners/me/open-requests")
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "not_listed"


def test_a_window_cannot_start_in_the_past(client: FlaskClient) -> None:
    logged_in(client, "patient")
    now = utcnow()
    latest = (now + timedelta(days=3)).isoformat()
    past = home_request(earliest=(now - timedelta(days=3)).isoformat(), latest=latest)
    refused = client.post("/api/v1/requests", json=past)
    assert refused.status_code == 422
    assert "earliest" in refused.get_json()["error"]["details"]["fields"]
    # A client's "now" arrives a moment late.
    just_now = home_request(earliest=(now - timedelta(seconds=30)).isoformat(), latest=latest)
    assert client.post("/api/v1/requests", json=just_now).status_code == 201
