"""Cross-site requests cannot use the login cookie; every answer carries the secure headers."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import marshmallow as ma
import pytest
from flask import Flask
from flask.testing import FlaskClient
from marshmallow import validate
from sqlalchemy.orm import Session

from marketplace.booking.models import Booking, BookingStatus
from marketplace.config import ConfigurationError, build_config
from marketplace.schemas import InputSchema
from tests.support.accounts import log_in_as
from tests.support.factories import book, make_practitioner, make_user, weekday_at

T = TypeVar("T")

EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}


@pytest.fixture
def patient_with_booking(client: FlaskClient, db: Session) -> Booking:
    patient = make_user(db)
    booking = book(db, patient, make_practitioner(db), weekday_at(10))
    log_in_as(client, patient.email)
    return booking


class TestCrossSiteRequests:
    def test_a_cross_site_form_post_cannot_book(self, client: FlaskClient, db: Session) -> None:
        practitioner = make_practitioner(db)
        log_in_as(client, make_user(db).email)
        fields = {
            "practitioner_id": str(practitioner.id),
            "start": weekday_at(11).isoformat(),
            "mode": "video",
        }
        # What an HTML form on another site can send (text/plain carrying JSON is the classic
        # trick): refused, with or without the browser's cross-site headers.
        bodies: list[tuple[Any, str]] = [
            (fields, "application/x-www-form-urlencoded"),
            (fields, "multipart/form-data"),
            (json.dumps(fields), "text/plain"),
        ]
        for body, content_type in bodies:
            for headers in (EVIL, {}):
                response = client.post(
                    "/api/v1/bookings", data=body, headers=headers, content_type=content_type
                )
                assert response.status_code in (403, 415), (content_type, headers)
        assert db.query(Booking).count() == 0

    def test_a_cross_site_json_post_cannot_cancel(
        self, client: FlaskClient, db: Session, patient_with_booking: Booking
    ) -> None:
        url = f"/api/v1/bookings/{patient_with_booking.id}/cancel"
        for headers in (EVIL, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "same-site"}):
            response = client.post(url, json={}, headers=headers)
            assert response.status_code == 403
            assert response.get_json()["error"]["code"] == "cross_site_request"
        db.refresh(patient_with_booking)
        assert patient_with_booking.status is BookingStatus.CONFIRMED

    def test_the_same_site_still_works(
        self, client: FlaskClient, db: Session, patient_with_booking: Booking
    ) -> None:
        response = client.post(
            f"/api/v1/bookings/{patient_with_booking.id}/cancel",
            json={},
            headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
        )
        assert response.status_code == 200, response.get_json()

    def test_an_empty_bearer_header_does_not_skip_the_check(
        self, client: FlaskClient, db: Session, patient_with_booking: Booking
    ) -> None:
        response = client.post(
            f"/api/v1/bookings/{patient_with_booking.id}/cancel",
            json={},
            headers={"Authorization": "Bearer ", **EVIL},
        )
        assert response.status_code == 403
        db.refresh(patient_with_booking)
        assert patient_with_booking.status is BookingStatus.CONFIRMED

    def test_a_bearer_token_needs_no_origin_check(
        self, app: Flask, client: FlaskClient, db: Session
    ) -> None:
        patient = make_user(db)
        booking = book(db, patient, make_practitioner(db), weekday_at(10))
        token = client.post(
            "/api/v1/auth/tokens",
            json={"name": "script"},
            headers={"Authorization": "Basic x"},
        )
        assert token.status_code == 401  # no session: get a token after logging in
        log_in_as(client, patient.email)
        secret = client.post("/api/v1/auth/tokens", json={"name": "script"}).get_json()["token"]
        client.delete_cookie(app.config["SESSION_COOKIE_NAME"])
        assert client.get("/api/v1/me").status_code == 401  # the cookie is really gone
        response = client.post(
            f"/api/v1/bookings/{booking.id}/cancel",
            json={},
            headers={"Authorization": f"Bearer {secret}", **EVIL},
        )
        assert response.status_code == 200

    def test_trusted_origins_are_configurable(
        self, app: Flask, client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(app.config, "TRUSTED_ORIGINS", ["https://app.example"])
        log_in_as(client, make_user(db).email)
        ok = client.post("/api/v1/auth/logout", headers={"Origin": "https://app.example"})
        assert ok.status_code == 204


class TestHeaders:
    def test_json_answers_carry_the_secure_headers(self, client: FlaskClient) -> None:
        response = client.get("/api/v1/specialties")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        assert "Strict-Transport-Security" not in response.headers  # not in development

    def test_api_answers_are_never_cached(self, client: FlaskClient) -> None:
        assert client.get("/api/v1/specialties").headers["Cache-Control"] == "no-store"

    def test_sql_echo_is_refused_in_production(self, tmp_path: Any) -> None:
        with pytest.raises(ConfigurationError, match="SQL_ECHO"):
            build_config(
                tmp_path, {"MARKETPLACE_ENV": "production", "SECRET_KEY": "k", "SQL_ECHO": "true"}
            )

    def test_errors_carry_them_too(self, client: FlaskClient) -> None:
        response = client.get("/api/v1/nowhere")
        assert response.status_code == 404
        assert response.headers["X-Content-Type-Options"] == "nosniff"

    def test_production_adds_hsts(
        self, app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setitem(app.config, "HSTS_SECONDS", 31_536_000)
        response = client.get("/healthz")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def _subclasses(kind: type[T]) -> set[type[T]]:
    found = set(kind.__subclasses__())
    return found.union(*(_subclasses(child) for child in found)) if found else found


def _bounded(field: ma.fields.Field[Any]) -> bool:
    if isinstance(field, ma.fields.List):
        return _bounded(field.inner) and any(
            isinstance(v, validate.Length) for v in field.validators
        )
    if not isinstance(field, ma.fields.String):
        return True  # not free text, UUIDs included (emails are strings: they need their limit)
    return any(
        (isinstance(v, validate.Length) and v.max is not None)
        or isinstance(v, validate.OneOf | validate.Regexp)
        for v in field.validators
    )


def test_every_string_a_client_sends_has_a_length_limit(app: Flask) -> None:
    fields = {
        f"{schema.__module__}.{schema.__name__}.{name}": field
        for schema in _subclasses(InputSchema)
        for name, field in schema._declared_fields.items()
        if not field.dump_only
    }
    assert len(fields) > 50  # every request schema is an InputSchema
    assert [name for name, field in fields.items() if not _bounded(field)] == []


class TestGuessing:
    def test_a_stolen_session_cannot_guess_the_password(
        self, client: FlaskClient, db: Session
    ) -> None:
        log_in_as(client, make_user(db).email)
        wrong = {"current_password": "a-wrong-guess", "new_password": "another-long-password"}
        statuses = [client.post("/api/v1/me/password", json=wrong).status_code for _ in range(11)]
        assert statuses[:10] == [422] * 10
        assert statuses[10] == 429
        assert client.delete("/api/v1/me", json={"password": "guess"}).status_code == 429

    def test_an_ipv6_client_is_limited_by_its_64(self, client: FlaskClient) -> None:
        def attempt(address: str) -> int:
            return client.post(
                "/api/v1/auth/login",
                json={"email": "someone@example.org", "password": "wrong-password"},
                environ_base={"REMOTE_ADDR": address},
            ).status_code

        assert [attempt(f"2001:db8:1:2::{host:x}") for host in range(10)] == [401] * 10
        assert attempt("2001:db8:1:2::99") == 429  # a new address in the same /64
        assert attempt("2001:db8:2:3::1") == 401  # another /64, at another site
        # The account's failures in a row delay a /64 of the same /48 (one site), not refuse it.
        assert attempt("2001:db8:1:3::1") == 429

    def test_ipv4_clients_of_a_dual_stack_server_are_told_apart(self, client: FlaskClient) -> None:
        """A server listening on [::] sees IPv4 clients as ::ffff:a.b.c.d: each is its own
        client, not one /64 shared by every IPv4 client there is."""
        statuses = [
            client.post(
                "/api/v1/auth/register",
                json={"email": "nope"},
                environ_base={"REMOTE_ADDR": f"::ffff:198.51.100.{number}"},
            ).status_code
            for number in range(1, 13)
        ]
        assert statuses == [422] * 12  # registrations: 10 a minute per client
