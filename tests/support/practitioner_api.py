"""The practitioner's own API, as a logged-in practitioner uses it: their profile and their
credentials."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PROFILE = {
    "profession": "physiotherapist",
    "bio": "Neuro physio, 12 years in stroke rehabilitation.",
    "specialties": ["stroke", "balance_disorders"],
    "modes": ["home", "video"],
    "base_postcode": "sw1a1aa",
    "travel_radius_km": 12,
    "session_minutes": 60,
    "price_pence": 8000,
    "languages": ["en", "pl"],
}

NMT = {
    "kind": "nmt_certificate",
    "number": "NMT-2024-0042",
    "issuer": "Northern Institute of Massage",
    "programme": "Neuromuscular Therapy Diploma",
    "training_hours": 450,
    "issued_on": "2024-06-01",
}


def put_profile(client: FlaskClient, **changes: Any) -> TestResponse:
    """Save the practitioner's profile: `PROFILE` with `changes`."""
    return client.put("/api/v1/practitioners/me", json={**PROFILE, **changes})


def submit(client: FlaskClient, **body: Any) -> TestResponse:
    """Submit a credential of the practitioner's."""
    return client.post("/api/v1/practitioners/me/credentials", json=body)


def credential_through_the_api(client: FlaskClient, number: str) -> str:
    """A video-only physiotherapist profile and an HCPC credential, made by the logged-in
    practitioner over HTTP; returns the credential's id."""
    client.put(
        "/api/v1/practitioners/me",
        json={
            "profession": "physiotherapist",
            "specialties": ["stroke"],
            "modes": ["video"],
            "session_minutes": 60,
            "price_pence": 5000,
        },
    )
    response = submit(client, kind="hcpc", number=number)
    assert response.get_json() is not None
    return str(response.get_json()["id"])
