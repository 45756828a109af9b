"""Failed-login limits and the keys they count on."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_an_email_with_a_lone_surrogate_is_refused_as_invalid_not_a_crash(
    client: FlaskClient,
) -> None:
    response = client.post(
        "/api/v1/auth/login", json={"email": "\ud800@x.org", "password": "wrong-password"}
    )
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
