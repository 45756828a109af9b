"""The application shell: configuration, the error envelope, OpenAPI, health, request ids."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.config import ConfigurationError, build_config
from marketplace.db import after_commit, get_database
from tests.support.api import assert_envelope
from tests.support.storage import free_loopback_port


class TestConfiguration:
    def test_production_refuses_to_start_without_a_secret_key(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="SECRET_KEY"):
            build_config(tmp_path, {"MARKETPLACE_ENV": "production"})

    def test_development_generates_a_secret_key_once_and_keeps_it(self, tmp_path: Path) -> None:
        first = build_config(tmp_path, {})["SECRET_KEY"]
        second = build_config(tmp_path, {})["SECRET_KEY"]
        assert first == second
        assert len(first) == 64
        assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0

    def test_embedded_defaults_need_no_server(self, tmp_path: Path) -> None:
        config = build_config(tmp_path, {})
        assert config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'marketplace.db'}"
        assert config["CELERY"]["broker_url"] == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
        assert config["CELERY"]["broker_transport_options"] == {}  # create_engine takes none
        assert config["RATELIMIT_STORAGE_URI"] == "memory://"
        assert config["SESSION_COOKIE_SECURE"] is False
        assert config["PUBLIC_BASE_URL"] == "http://127.0.0.1:5000"  # where ./dev run serves

    def test_redis_url_drives_broker_and_rate_limits(self, tmp_path: Path) -> None:
        config = build_config(
            tmp_path,
            {
                "REDIS_URL": "redis://cache:6379/0",
                "SECRET_KEY": "k",
                "MARKETPLACE_ENV": "production",
            },
        )
        assert config["CELERY"]["broker_url"] == "redis://cache:6379/0"
        visibility = config["CELERY"]["broker_transport_options"]["visibility_timeout"]
        assert visibility > config["NOTIFICATION_LEASE_SECONDS"]
        assert config["RATELIMIT_STORAGE_URI"] == "redis://cache:6379/0"
        assert config["SESSION_COOKIE_SECURE"] is True
        assert config["HSTS_SECONDS"] == 31_536_000

    def test_tasks_are_not_lost_when_a_worker_dies(self, tmp_path: Path) -> None:
        celery = build_config(tmp_path, {})["CELERY"]
        assert celery["task_acks_late"] is True
        assert celery["task_reject_on_worker_lost"] is True
        assert celery["accept_content"] == ["json"]

    def test_bad_numbers_are_a_clear_configuration_error(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="MAIL_PORT"):
            build_config(tmp_path, {"MAIL_PORT": "smtp"})

    def test_the_public_base_url_is_a_web_address_without_a_trailing_slash(
        self, tmp_path: Path
    ) -> None:
        given = {"PUBLIC_BASE_URL": "https://care.example.org/"}
        assert build_config(tmp_path, given)["PUBLIC_BASE_URL"] == "https://care.example.org"
        with pytest.raises(ConfigurationError, match="PUBLIC_BASE_URL"):
            build_config(tmp_path, {"PUBLIC_BASE_URL": "care.example.org"})


class TestErrorEnvelope:
    def test_unknown_url_is_404(self, client: FlaskClient) -> None:
        assert_envelope(client.get("/api/v1/nothing-here"), 404, "not_found")

    def test_wrong_method_is_405_with_allowed_methods(self, client: FlaskClient) -> None:
        error = assert_envelope(client.patch("/api/v1/me"), 405, "method_not_allowed")
        assert "GET" in error["details"]["allowed"]

    def test_oversized_body_is_413(self, client: FlaskClient, app: Flask) -> None:
        body = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
        response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
        assert_envelope(response, 413, "payload_too_large")

    def test_a_url_over_4_kib_is_414(self, client: FlaskClient) -> None:
        response = client.get("/api/v1/practitioners?q=" + "a" * 5000)
        assert_envelope(response, 414, "uri_too_long")

    def test_headers_over_16_kib_are_431(self, client: FlaskClient) -> None:
        response = client.get("/api/v1/specialties", headers={"X-Big": "b" * 20_000})
        assert_envelope(response, 431, "header_fields_too_large")

    @pytest.mark.parametrize(
        "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data"]
    )
    def test_non_json_bodies_are_415(self, client: FlaskClient, content_type: str) -> None:
        response = client.post(
            "/api/v1/auth/login", data="email=a&password=b", content_type=content_type
        )
        assert_envelope(response, 415, "unsupported_media_type")

    def test_malformed_json_is_400(self, client: FlaskClient) -> None:
        response = client.post(
            "/api/v1/auth/login", data='{"email": ', content_type="application/json"
        )
        assert_envelope(response, 400, "malformed_json")

    @pytest.mark.parametrize("body", ["[]", '"text"', "3", "null"])
    def test_json_that_is_not_an_object_is_422(self, client: FlaskClient, body: str) -> None:
        response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
        assert_envelope(response, 422, "validation_failed")

    def test_wrong_types_are_422_per_field(self, client: FlaskClient) -> None:
        response = client.post("/api/v1/auth/login", json={"email": 5, "password": ["x"]})
        error = assert_envelope(response, 422, "validation_failed")
        assert set(error["details"]["fields"]) == {"email", "password"}

    def test_unexpected_errors_are_500_in_the_envelope_without_internals(
        self, app: Flask, db: Session, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def explode(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("secret internal detail")

        monkeypatch.setattr("marketplace.accounts.service.authenticate", explode)
        app.config["PROPAGATE_EXCEPTIONS"] = False
        try:
            response = app.test_client().post(
                "/api/v1/auth/login", json={"email": "a@example.org", "password": "whatever1"}
            )
        finally:
            app.config["PROPAGATE_EXCEPTIONS"] = None
        error = assert_envelope(response, 500, "internal_error")
        assert "secret" not in response.get_data(as_text=True)
        assert error["details"] == {}


class TestRequestBoundary:
    def test_a_failed_request_writes_nothing(self, client: FlaskClient, db: Session) -> None:
        body = {
            "email": "a@example.org",
            "password": "password1",
            "full_name": "A",
            "role": "patient",
        }
        assert client.post("/api/v1/auth/register", json=body).status_code == 422
        assert db.scalar(select(User)) is None

    def test_after_commit_skips_callbacks_of_a_rolled_back_savepoint(self, app: Flask) -> None:
        ran: list[str] = []
        with get_database(app).session_scope() as session:
            after_commit(session, lambda: ran.append("outer"))
            savepoint = session.begin_nested()
            after_commit(session, lambda: ran.append("inner"))
            savepoint.rollback()
        assert ran == ["outer"]

    def test_a_failing_callback_neither_undoes_nor_hides_the_commit(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        ran: list[str] = []

        def broker_down() -> None:
            raise ConnectionError("broker down")

        with get_database(app).session_scope() as session:
            after_commit(session, broker_down)
            after_commit(session, lambda: ran.append("next"))
        assert ran == ["next"]
        assert "transaction outcome callback failed" in caplog.text

    def test_after_commit_callbacks_run_only_after_a_commit(self, app: Flask) -> None:
        ran: list[str] = []
        with get_database(app).session_scope() as session:
            after_commit(session, lambda: ran.append("committed"))
            assert ran == []
        assert ran == ["committed"]

        def fail_inside_unit_of_work() -> None:
            with get_database(app).session_scope() as session:
                after_commit(session, lambda: ran.append("rolled back"))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            fail_inside_unit_of_work()
        assert ran == ["committed"]

    def test_request_id_is_echoed_or_made(self, client: FlaskClient) -> None:
        made = client.get("/healthz").headers["X-Request-ID"]
        assert len(made) == 32
        given = client.get("/healthz", headers={"X-Request-ID": "abc-123-def"})
        assert given.headers["X-Request-ID"] == "abc-123-def"
        forged = client.get("/healthz", headers={"X-Request-ID": "<script>alert(1)</script>"})
        assert forged.headers["X-Request-ID"] != "<script>alert(1)</script>"


class TestOpenAPI:
    def test_document_lists_the_account_endpoints(self, client: FlaskClient) -> None:
        spec = client.get("/api/v1/openapi.json").get_json()
        assert spec["info"]["title"] == "Practitioner marketplace"
        for path in [
            "/api/v1/auth/register",
            "/api/v1/auth/login",
            "/api/v1/auth/logout",
            "/api/v1/auth/tokens",
            "/api/v1/auth/tokens/{token_id}",
            "/api/v1/me",
            "/api/v1/me/password",
        ]:
            assert path in spec["paths"], path
        assert "bearerAuth" in spec["components"]["securitySchemes"]
        assert spec["paths"]["/api/v1/me"]["get"]["security"]

    def test_every_operation_has_a_unique_snake_case_operation_id(
        self, client: FlaskClient
    ) -> None:
        spec = client.get("/api/v1/openapi.json").get_json()
        operations = [
            (method, path, operation)
            for path, item in spec["paths"].items()
            for method, operation in item.items()
            if method in ("get", "put", "post", "patch", "delete")
        ]
        ids = [operation.get("operationId", "") for _, _, operation in operations]
        assert len(operations) > 50
        assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", id_) for id_ in ids), ids
        assert len(set(ids)) == len(ids)
        named = {(method, path): operation["operationId"] for method, path, operation in operations}
        assert named["post", "/api/v1/bookings"] == "create_booking"
        assert named["get", "/api/v1/bookings"] == "list_bookings"
        assert named["get", "/api/v1/bookings/{booking_id}"] == "get_booking"
        assert named["post", "/api/v1/bookings/{booking_id}/cancel"] == "cancel_booking"
        assert named["post", "/api/v1/requests/{request_id}/claim"] == "claim_request"

    def test_documented_error_shape_is_the_envelope(self, client: FlaskClient) -> None:
        spec = client.get("/api/v1/openapi.json").get_json()
        error_schema = spec["components"]["schemas"]["Error"]
        assert error_schema["required"] == ["error"]


class TestApiDocs:
    def test_page_loads_nothing_from_another_origin(self, client: FlaskClient) -> None:
        response = client.get("/api/docs")
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert "//" not in page.replace("<!DOCTYPE html>", "")  # no absolute or scheme-less URL
        for url in referenced_urls(page):
            assert url.startswith("/"), url

    def test_its_assets_are_served_by_the_app(self, client: FlaskClient) -> None:
        page = client.get("/api/docs").get_data(as_text=True)
        urls = referenced_urls(page)
        assert any(url.endswith("/swagger-ui-bundle.js") for url in urls)
        assert any(url.endswith(".css") for url in urls)
        for url in urls:
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert asset.data, url

    def test_runs_no_inline_script_and_only_script_from_its_origin(
        self, client: FlaskClient
    ) -> None:
        response = client.get("/api/docs")
        policy = dict(
            directive.strip().split(" ", 1)
            for directive in response.headers["Content-Security-Policy"].split(";")
        )
        assert policy["script-src"] == "'self'"
        assert policy["default-src"] == "'none'"
        page = response.get_data(as_text=True)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
        assert scripts
        assert all("src=" in attributes and not body.strip() for attributes, body in scripts)

    def test_serves_none_of_the_distribution_pages(self, client: FlaskClient) -> None:
        # index.html would start Swagger's demo, which loads a document from another origin
        assert client.get("/api/docs/assets/index.html").status_code == 404
        assert client.get("/api/docs/assets/oauth2-redirect.html").status_code == 404


def referenced_urls(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]*)"', page)


class TestHealth:
    def test_ok_when_database_and_broker_answer(self, client: FlaskClient) -> None:
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"database": "ok", "broker": "ok"}

    def test_names_the_broker_when_it_is_down_at_once(
        self, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        closed = free_loopback_port()
        monkeypatch.setattr(
            app.extensions["celery"].conf, "broker_url", f"redis://127.0.0.1:{closed}/0"
        )
        started = time.monotonic()
        error = assert_envelope(client.get("/healthz"), 503, "service_unavailable")
        assert time.monotonic() - started < 1.5  # one attempt, no retry sleep
        assert error["details"] == {"database": "ok", "broker": "down"}

    def test_a_broker_that_takes_the_connection_but_never_answers_is_down_within_seconds(
        self, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with socket.socket() as silent:  # the kernel accepts connections; nobody ever reads
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            monkeypatch.setattr(
                app.extensions["celery"].conf, "broker_url", f"redis://127.0.0.1:{port}/0"
            )
            started = time.monotonic()
            error = assert_envelope(client.get("/healthz"), 503, "service_unavailable")
            assert time.monotonic() - started < 2.5
        assert error["details"] == {"database": "ok", "broker": "down"}

    def test_checks_the_embedded_broker_for_real(
        self, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        broken = "sqla+sqlite:////nonexistent-folder/broker.db"
        monkeypatch.setattr(app.extensions["celery"].conf, "broker_url", broken)
        error = assert_envelope(client.get("/healthz"), 503, "service_unavailable")
        assert error["details"]["broker"] == "down"

    def test_names_the_database_when_it_is_down(
        self, client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        unreachable = create_engine(f"sqlite:///{tmp_path}/missing-dir/none.db")
        monkeypatch.setattr(get_database(app), "engine", unreachable)
        error = assert_envelope(client.get("/healthz"), 503, "service_unavailable")
        assert error["details"] == {"database": "down", "broker": "ok"}


class TestHostileInput:
    @pytest.mark.parametrize("bad", ["\x00", "a\ud800b"])
    def test_unstorable_characters_are_422_not_500(self, client: FlaskClient, bad: str) -> None:
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": "a@example.org",
                "password": f"long-password{bad}",
                "full_name": f"A{bad}",
                "role": "patient",
            },
        )
        error = assert_envelope(response, 422, "validation_failed")
        assert set(error["details"]["fields"]) == {"password", "full_name"}

    def test_unstorable_characters_in_a_query_are_422(self, client: FlaskClient) -> None:
        response = client.get(
            "/api/v1/practitioners/00000000-0000-0000-0000-000000000000/slots?mode=%00"
        )
        assert_envelope(response, 422, "validation_failed")

    def test_absurdly_nested_json_is_400(self, client: FlaskClient) -> None:
        body = "[" * 100_000 + "]" * 100_000
        response = client.post("/api/v1/auth/login", data=body, content_type="application/json")
        assert_envelope(response, 400, "malformed_json")


def test_sql_errors_never_carry_parameter_values(app: Flask) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError) as failure, get_database(app).engine.connect() as connection:
        connection.execute(
            text("SELECT no_such_column FROM users WHERE email = :e"),
            {"e": "private.person@example.org"},
        )
    assert "private.person" not in str(failure.value)


def test_roles_are_stored_as_their_names(client: FlaskClient, db: Session) -> None:
    from sqlalchemy import text

    client.post(
        "/api/v1/auth/register",
        json={
            "email": "r@example.org",
            "password": "a-long-password",
            "full_name": "R",
            "role": "practitioner",
        },
    )
    assert db.scalar(text("SELECT role FROM users")) == "practitioner"


def test_sqlite_without_maths_functions_gets_them_from_python() -> None:
    import sqlite3

    from marketplace.db import _ensure_math_functions

    class BuiltWithout:
        def execute(self, _sql: str) -> None:
            raise sqlite3.OperationalError("no such function: sqrt")

    connection = sqlite3.connect(":memory:")
    _ensure_math_functions(connection, BuiltWithout())
    row = connection.execute("SELECT sqrt(9.0), floor(2.7), floor(-0.5), sqrt(NULL)").fetchone()
    assert row == (3.0, 2.0, -1.0, None)
    connection.close()
