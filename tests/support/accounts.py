"""Accounts for tests: the shared password, and registering and logging in over the API."""

from __future__ import annotations

import os
from typing import Any

from flask.testing import FlaskClient

PASSWORD = "a-long-test-password"


def register(
    client: FlaskClient,
    *,
    email: str = "pat@example.org",
    role: str = "patient",
    password: str = PASSWORD,
    **extra: Any,
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/auth/register",
        json={"email": email, "password": password, "full_name": "Pat Doe", "role": role, **extra},
    )
    assert response.status_code == 201, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def login(client: FlaskClient, email: str = "pat@example.org", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def logged_in(
    client: FlaskClient, role: str = "patient", email: str | None = None
) -> dict[str, Any]:
    """Register and log in a new account of `role` (patient or practitioner) on `client`."""
    email = email or f"{role}-{os.urandom(4).hex()}@example.org"
    user = register(client, email=email, role=role)
    assert login(client, email=email).status_code == 200
    return user


def log_in_as(client: FlaskClient, email: str) -> None:
    assert login(client, email=email).status_code == 200
