from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from marketplace.practitioners.vocabulary import SPECIALTY_SLUGS
from tests.support.accounts import logged_in
from tests.support.factories import make_practitioner
from tests.support.practitioner_api import put_profile


def test_vocabulary_lists_the_contract_slugs(client: FlaskClient) -> None:
    items = client.get("/api/v1/specialties").get_json()["items"]
    assert [item["slug"] for item in items] == list(SPECIALTY_SLUGS)
    assert {item["kind"] for item in items} == {"condition", "technique"}
    assert {"slug": "parkinsons", "label": "Parkinson's disease", "kind": "condition"} in items


def test_practitioner_creates_a_pending_profile(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    response = put_profile(client)
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "pending"
    assert body["status_reason"] == "credential_missing"
    assert body["base_postcode"] == "SW1A 1AA"
    assert body["modes"] == ["home", "video"]
    assert body["credentials"] == []
    assert client.get("/api/v1/practitioners/me").get_json()["id"] == body["id"]


def test_unknown_specialty_is_422_listing_the_allowed_ones(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    response = put_profile(client, specialties=["stroke", "astrology"])
    assert response.status_code == 422
    details = response.get_json()["error"]["details"]
    assert "astrology" in details["fields"]["specialties"][0]
    assert details["allowed"] == list(SPECIALTY_SLUGS)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"modes": []}, "modes"),
        ({"modes": ["teleport"]}, "modes"),
        ({"travel_radius_km": 81}, "travel_radius_km"),
        ({"travel_radius_km": 0}, "travel_radius_km"),
        ({"session_minutes": 50}, "session_minutes"),
        ({"session_minutes": 135}, "session_minutes"),
        ({"session_minutes": 15}, "session_minutes"),
        ({"price_pence": 0}, "price_pence"),
        ({"base_postcode": "NOT A CODE"}, "base_postcode"),
        ({"base_postcode": None}, "base_postcode"),
        ({"travel_radius_km": None}, "travel_radius_km"),
        ({"profession": "surgeon"}, "profession"),
        ({"languages": ["English"]}, "languages"),
    ],
)
def test_invalid_profiles_are_422_per_field(
    client: FlaskClient, changes: dict[str, Any], field: str
) -> None:
    logged_in(client, "practitioner")
    response = put_profile(client, **changes)
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["details"]["fields"]


def test_the_base_is_placed_on_the_map_once_at_write_time(client: FlaskClient, db: Session) -> None:
    from marketplace.practitioners.models import Practitioner

    logged_in(client, "practitioner")
    body = put_profile(client, base_postcode="n1 9gu").get_json()
    stored = db.get_one(Practitioner, uuid.UUID(body["id"]))
    assert stored.latitude is not None
    assert stored.longitude is not None
    assert abs(stored.latitude - 51.54) < 0.05  # the N1 outcode centroid


def test_a_postcode_that_cannot_be_placed_is_422(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    response = put_profile(client, base_postcode="ZE1 0AA")  # Shetland: not in the London set
    assert response.status_code == 422
    assert "ZE1 0AA" in response.get_json()["error"]["details"]["fields"]["base_postcode"][0]


def test_video_only_needs_no_base_or_radius(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    response = put_profile(client, modes=["video"], base_postcode=None, travel_radius_km=None)
    assert response.status_code == 200


def test_patients_cannot_have_a_profile(client: FlaskClient) -> None:
    logged_in(client, "patient")
    assert put_profile(client).status_code == 403


def test_public_profile_is_404_until_listed(client: FlaskClient, db: Session) -> None:
    pending = make_practitioner(db, verified=False)
    listed = make_practitioner(db)
    assert client.get(f"/api/v1/practitioners/{pending.id}").status_code == 404
    response = client.get(f"/api/v1/practitioners/{listed.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["area"] == "SW1A"
    assert "base_postcode" not in body
    assert "credentials" not in body
    assert body["specialties"][0]["label"] == "Parkinson's disease"


def test_slots_of_a_listed_practitioner(client: FlaskClient, db: Session) -> None:
    practitioner = make_practitioner(db)
    response = client.get(
        f"/api/v1/practitioners/{practitioner.id}/slots",
        query_string={"from": "2030-01-07T00:00:00+00:00", "to": "2030-01-08T00:00:00+00:00"},
    )
    assert response.status_code == 200
    # beyond the 60-day horizon from today: nothing is offered
    assert response.get_json()["items"] == []


def test_slots_honour_notice_horizon_and_mode(client: FlaskClient, db: Session, app: Flask) -> None:
    practitioner = make_practitioner(db, modes=["video"], base_postcode=None, travel_radius_km=None)
    response = client.get(f"/api/v1/practitioners/{practitioner.id}/slots")
    items = response.get_json()["items"]
    assert items, "a practitioner open every weekday has slots in the next 14 days"
    from datetime import datetime, timedelta

    from marketplace.db import utcnow

    starts = [datetime.fromisoformat(item["start"]) for item in items]
    assert min(starts) >= utcnow() + timedelta(hours=12) - timedelta(minutes=1)
    assert all(start.minute % 15 == 0 for start in starts)
    assert all(item["modes"] == ["video"] for item in items)
    home = client.get(
        f"/api/v1/practitioners/{practitioner.id}/slots", query_string={"mode": "home"}
    )
    assert home.get_json()["items"] == []


def test_slots_refuse_backwards_or_huge_ranges(client: FlaskClient, db: Session) -> None:
    practitioner = make_practitioner(db)
    url = f"/api/v1/practitioners/{practitioner.id}/slots"
    backwards = {"from": "2030-01-08T00:00:00+00:00", "to": "2030-01-07T00:00:00+00:00"}
    assert client.get(url, query_string=backwards).status_code == 422
    huge = {"from": "2030-01-01T00:00:00+00:00", "to": "2030-03-01T00:00:00+00:00"}
    assert client.get(url, query_string=huge).status_code == 422
    naive = {"from": "2030-01-01T00:00:00"}
    assert client.get(url, query_string=naive).status_code == 422


def test_unlisted_practitioners_have_no_slots(client: FlaskClient, db: Session) -> None:
    pending = make_practitioner(db, verified=False)
    assert client.get(f"/api/v1/practitioners/{pending.id}/slots").status_code == 404


class TestAvailabilityApi:
    def test_round_trip(self, client: FlaskClient) -> None:
        logged_in(client, "practitioner")
        put_profile(client)
        body = {
            "timezone": "Europe/London",
            "weekly": [
                {"weekday": 0, "start": "09:00", "end": "12:00", "modes": ["home"]},
                {"weekday": 0, "start": "13:00", "end": "17:30"},
            ],
            "exceptions": [
                {"date": "2027-12-25", "available": False},
                {"date": "2027-12-27", "start": "10:00", "end": "12:00", "modes": ["video"]},
            ],
            "min_notice_hours": 24,
        }
        response = client.put("/api/v1/practitioners/me/availability", json=body)
        assert response.status_code == 200, response.get_json()
        stored = client.get("/api/v1/practitioners/me/availability").get_json()
        assert stored["weekly"][1] == {
            "weekday": 0,
            "start": "13:00",
            "end": "17:30",
            "modes": ["home", "video"],
        }
        assert stored["exceptions"][0] == {
            "date": "2027-12-25",
            "available": False,
            "start": None,
            "end": None,
            "modes": [],
        }
        assert stored["min_notice_hours"] == 24
        assert stored["horizon_days"] == 60

    @pytest.mark.parametrize(
        "body",
        [
            {
                "weekly": [
                    {"weekday": 1, "start": "09:00", "end": "13:00"},
                    {"weekday": 1, "start": "12:00", "end": "17:00"},
                ]
            },
            {"weekly": [{"weekday": 1, "start": "17:00", "end": "09:00"}]},
            {"weekly": [{"weekday": 7, "start": "09:00", "end": "10:00"}]},
            {"weekly": [{"weekday": 1, "start": "9am", "end": "10:00"}]},
            {"weekly": [], "timezone": "Mars/Olympus"},
            {"weekly": [], "exceptions": [{"date": "2027-12-25"}]},
            {
                "weekly": [],
                "exceptions": [
                    {"date": "2027-12-25", "available": False, "start": "09:00", "end": "10:00"}
                ],
            },
            {
                "weekly": [],
                "exceptions": [
                    {"date": "2027-12-25", "available": False},
                    {"date": "2027-12-25", "start": "09:00", "end": "10:00"},
                ],
            },
        ],
    )
    def test_bad_rules_are_refused_not_doubled(
        self, client: FlaskClient, body: dict[str, Any]
    ) -> None:
        logged_in(client, "practitioner")
        put_profile(client)
        response = client.put("/api/v1/practitioners/me/availability", json=body)
        assert response.status_code == 422, response.get_json()

    def test_needs_a_profile_first(self, client: FlaskClient) -> None:
        logged_in(client, "practitioner")
        response = client.put("/api/v1/practitioners/me/availability", json={"weekly": []})
        assert response.status_code == 404
