from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import AccessToken, TokenKind, User
from marketplace.accounts.service import hash_token
from tests.support.accounts import PASSWORD, login, register


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(client: FlaskClient, name: str = "script") -> dict[str, str]:
    response = client.post("/api/v1/auth/tokens", json={"name": name})
    assert response.status_code == 201
    token: dict[str, str] = response.get_json()
    return token


class TestRegister:
    def test_creates_a_patient_with_normalised_email_and_phone(self, client: FlaskClient) -> None:
        user = register(client, email="  Pat.Doe@Example.ORG ", phone="020 7946 0123")
        assert user["email"] == "pat.doe@example.org"
        assert user["phone"] == "+442079460123"
        assert user["role"] == "patient"
        assert set(user) == {"id", "email", "full_name", "role", "phone", "created_at"}

    def test_stores_an_argon2id_hash_never_the_password(
        self, client: FlaskClient, db: Session
    ) -> None:
        register(client)
        stored = db.scalar(select(User.password_hash))
        assert stored is not None
        assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
        assert PASSWORD not in stored

    def test_email_is_unique_case_insensitively(self, client: FlaskClient) -> None:
        register(client, email="pat@example.org")
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": "PAT@example.org",
                "password": PASSWORD,
                "full_name": "X",
                "role": "patient",
            },
        )
        assert response.status_code == 409
        assert response.get_json()["error"]["code"] == "email_taken"

    def test_admin_cannot_be_registered_over_http(self, client: FlaskClient) -> None:
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": "a@example.org",
                "password": PASSWORD,
                "full_name": "A",
                "role": "admin",
            },
        )
        assert response.status_code == 422
        assert "role" in response.get_json()["error"]["details"]["fields"]

    def test_lists_every_bad_field(self, client: FlaskClient) -> None:
        response = client.post(
            "/api/v1/auth/register",
            json={"email": "nope", "password": PASSWORD, "full_name": "  ", "role": "x", "age": 3},
        )
        assert response.status_code == 422
        fields = response.get_json()["error"]["details"]["fields"]
        assert set(fields) == {"email", "full_name", "role", "age"}

    def test_refuses_short_and_common_passwords_without_composition_rules(
        self, client: FlaskClient
    ) -> None:
        def attempt(password: str) -> int:
            return client.post(
                "/api/v1/auth/register",
                json={
                    "email": "p@example.org",
                    "password": password,
                    "full_name": "P",
                    "role": "patient",
                },
            ).status_code

        assert attempt("short") == 422
        assert attempt("Password123") == 422  # common, whatever the case
        assert attempt("x" * 129) == 422
        assert attempt("all lowercase words no digits") == 201

    def test_allows_a_64_character_passphrase(self, client: FlaskClient) -> None:
        register(client, password="p" * 64)
        assert login(client, password="p" * 64).status_code == 200

    def test_invalid_phone_is_a_field_error(self, client: FlaskClient) -> None:
        response = client.post(
            "/api/v1/auth/register",
            json={
                "email": "p@example.org",
                "password": PASSWORD,
                "full_name": "P",
                "role": "patient",
                "phone": "12",
            },
        )
        assert response.status_code == 422
        assert "phone" in response.get_json()["error"]["details"]["fields"]


class TestLogin:
    def test_login_sets_a_hardened_session_cookie_and_me_works(self, client: FlaskClient) -> None:
        register(client)
        response = login(client)
        assert response.status_code == 200
        assert response.get_json()["email"] == "pat@example.org"
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie
        assert client.get("/api/v1/me").get_json()["email"] == "pat@example.org"

    def test_wrong_password_and_unknown_email_look_the_same(self, client: FlaskClient) -> None:
        register(client)
        wrong = login(client, password="not-the-password")
        unknown = login(client, email="nobody@example.org")
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.get_json() == unknown.get_json()
        assert client.get("/api/v1/me").status_code == 401

    def test_inactive_user_cannot_log_in(self, client: FlaskClient, db: Session) -> None:
        register(client)
        user = db.scalars(select(User)).one()
        user.is_active = False
        db.flush()
        assert login(client).status_code == 401

    def test_session_id_rotates_at_login(self, client: FlaskClient, db: Session) -> None:
        register(client)
        login(client)
        login(client)
        sessions = db.scalars(
            select(AccessToken).where(AccessToken.kind == TokenKind.SESSION)
        ).all()
        assert len(sessions) == 2
        assert len({token.token_hash for token in sessions}) == 2

    def test_logout_ends_the_session_server_side(self, client: FlaskClient, app: Flask) -> None:
        register(client)
        login(client)
        stolen_cookie = client.get_cookie("marketplace_session")
        assert stolen_cookie is not None
        assert client.post("/api/v1/auth/logout").status_code == 204
        assert client.get("/api/v1/me").status_code == 401
        replay = app.test_client()
        replay.set_cookie("marketplace_session", stolen_cookie.value)
        assert replay.get("/api/v1/me").status_code == 401

    def test_a_burst_of_failed_logins_is_rate_limited(self, client: FlaskClient) -> None:
        register(client)
        statuses = [login(client, password="wrong-password").status_code for _ in range(11)]
        assert statuses[:10] == [401] * 10
        assert statuses[10] == 429
        limited = login(client, password="wrong-password")
        assert limited.get_json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["Retry-After"]) > 0

    def test_one_account_takes_at_most_100_failed_logins_an_hour_from_anywhere(
        self, client: FlaskClient
    ) -> None:
        register(client)

        def attempt(number: int, password: str = "wrong-password") -> Any:  # noqa: S107
            address = f"10.{number // 250}.{number % 250}.1"  # a new address every time
            return client.post(
                "/api/v1/auth/login",
                json={"email": "PAT@example.org ", "password": password},
                environ_base={"REMOTE_ADDR": address},
            )

        assert all(attempt(number).status_code == 401 for number in range(100))
        limited = attempt(100)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) > 0
        assert attempt(101, PASSWORD).status_code == 429  # even the right password, for now
        other = client.post("/api/v1/auth/login", json={"email": "x@example.org", "password": "y"})
        assert other.status_code == 401  # other accounts are not locked out

    def test_successful_logins_do_not_use_up_the_failure_budget(self, client: FlaskClient) -> None:
        register(client)
        assert all(login(client).status_code == 200 for _ in range(15))


class TestTokens:
    def test_bearer_token_works_on_me_and_only_its_hash_is_stored(
        self,
        client: FlaskClient,
        app: Flask,
        db: Session,
    ) -> None:
        register(client)
        login(client)
        issued = make_token(client)
        assert re.fullmatch(r"mkt_[A-Za-z0-9_-]{43}", issued["token"])
        stored = db.scalars(select(AccessToken).where(AccessToken.kind == TokenKind.API)).one()
        assert stored.token_hash == hash_token(issued["token"])
        assert issued["token"] not in stored.token_hash
        other = app.test_client()
        assert other.get("/api/v1/me", headers=bearer(issued["token"])).status_code == 200

    def test_listing_never_shows_secrets(self, client: FlaskClient) -> None:
        register(client)
        login(client)
        make_token(client)
        listed = client.get("/api/v1/auth/tokens").get_json()
        assert len(listed["items"]) == 1
        assert "token" not in listed["items"][0]

    def test_bad_bearer_token_is_401_even_with_a_session(self, client: FlaskClient) -> None:
        register(client)
        login(client)
        response = client.get("/api/v1/me", headers=bearer("mkt_forged"))
        assert response.status_code == 401

    def test_revoked_token_stops_working(self, client: FlaskClient, app: Flask) -> None:
        register(client)
        login(client)
        issued = make_token(client)
        assert client.delete(f"/api/v1/auth/tokens/{issued['id']}").status_code == 204
        assert (
            app.test_client().get("/api/v1/me", headers=bearer(issued["token"])).status_code == 401
        )
        assert client.delete(f"/api/v1/auth/tokens/{issued['id']}").status_code == 404

    def test_cannot_revoke_another_users_token(self, client: FlaskClient, app: Flask) -> None:
        register(client, email="a@example.org")
        login(client, email="a@example.org")
        issued = make_token(client)
        intruder = app.test_client()
        register(intruder, email="b@example.org")
        login(intruder, email="b@example.org")
        assert intruder.delete(f"/api/v1/auth/tokens/{issued['id']}").status_code == 404
        assert (
            app.test_client().get("/api/v1/me", headers=bearer(issued["token"])).status_code == 200
        )

    def test_logout_with_a_bearer_token_revokes_that_token(
        self, client: FlaskClient, app: Flask
    ) -> None:
        register(client)
        login(client)
        token = make_token(client)["token"]
        other = app.test_client()
        assert other.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
        assert other.get("/api/v1/me", headers=bearer(token)).status_code == 401
        assert client.get("/api/v1/me").status_code == 200


class TestPasswordChange:
    def test_needs_the_current_password(self, client: FlaskClient) -> None:
        register(client)
        login(client)
        response = client.post(
            "/api/v1/me/password",
            json={"current_password": "wrong-password", "new_password": "a-new-long-password"},
        )
        assert response.status_code == 422
        assert login(client).status_code == 200

    def test_ends_other_sessions_and_tokens_but_not_this_one(
        self,
        client: FlaskClient,
        app: Flask,
    ) -> None:
        register(client)
        login(client)
        token = make_token(client)["token"]
        laptop = app.test_client()
        login(laptop)
        response = client.post(
            "/api/v1/me/password",
            json={"current_password": PASSWORD, "new_password": "a-new-long-password"},
        )
        assert response.status_code == 204
        assert client.get("/api/v1/me").status_code == 200
        assert laptop.get("/api/v1/me").status_code == 401
        assert app.test_client().get("/api/v1/me", headers=bearer(token)).status_code == 401
        assert login(laptop, password=PASSWORD).status_code == 401
        assert login(laptop, password="a-new-long-password").status_code == 200


def test_protected_endpoints_answer_401_when_anonymous(client: FlaskClient) -> None:
    for method, path in [
        ("get", "/api/v1/me"),
        ("post", "/api/v1/auth/logout"),
        ("post", "/api/v1/auth/tokens"),
        ("get", "/api/v1/auth/tokens"),
        ("post", "/api/v1/me/password"),
    ]:
        response = getattr(client, method)(path, json={})
        assert response.status_code == 401, path
        assert response.get_json()["error"]["code"] == "unauthenticated"
