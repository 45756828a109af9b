"""Where limits are counted (issue 20): never in memory instead of Redis. While Redis cannot be
reached, limited requests are refused (fail closed, 503); and no request's content (an odd email,
a huge body, an odd client address) can make a limit fail, let alone switch a process over."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits.storage import RedisStorage
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.accounts.throttle import RedisFailureStore
from marketplace.addresses import client_key, client_site
from marketplace.config import build_config
from marketplace.extensions import limiter
from tests.support.accounts import PASSWORD, log_in_as, login
from tests.support.admin_pages import sign_in
from tests.support.factories import make_user

ODD_ADDRESSES = [
    "fe80::1%eth0",
    "fe80::1%",
    "::ffff:198.51.100.7",
    "2001:db8::1:2:3:4:5:6:7:8",
    "not an address",
    "198.51.100.7:443",
    "[2001:db8::1]",
    "",
    "ÿ" * 4000,
]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


@pytest.fixture
def redis_down(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Both counters (failed logins, and Flask-Limiter's) on a Redis that cannot be reached."""
    url = f"redis://127.0.0.1:{closed_port()}/14"
    monkeypatch.setattr(app.extensions["login_throttle"], "store", RedisFailureStore.from_url(url))
    storage = RedisStorage(url, socket_connect_timeout=1)
    monkeypatch.setattr(limiter, "_storage", storage)
    monkeypatch.setattr(limiter, "_limiter", type(limiter.limiter)(storage))
    yield
    assert limiter._storage_dead is False  # never switched to counting in memory


class TestRedisDown:
    def test_logins_are_refused_not_counted_in_memory(
        self, client: FlaskClient, db: Session, redis_down: None
    ) -> None:
        user = make_user(db)
        for password in ("wrong-password", PASSWORD):
            response = login(client, user.email, password)
            assert response.status_code == 503
            assert response.get_json()["error"]["code"] == "service_unavailable"
            assert int(response.headers["Retry-After"]) > 0
        assert client.get("/api/v1/me").status_code == 401

    def test_the_back_office_sign_in_is_refused_with_a_page(
        self, client: FlaskClient, db: Session, redis_down: None
    ) -> None:
        admin = make_user(db, Role.ADMIN)
        response = sign_in(client, admin.email)
        assert response.status_code == 503
        assert response.mimetype == "text/html"
        assert client.get("/admin/credentials").status_code == 302

    def test_password_checks_of_signed_in_requests_are_refused(
        self, client: FlaskClient, db: Session, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        log_in_as(client, make_user(db).email)
        url = f"redis://127.0.0.1:{closed_port()}/14"
        store = RedisFailureStore.from_url(url)
        monkeypatch.setattr(app.extensions["login_throttle"], "store", store)
        change = {"current_password": PASSWORD, "new_password": "another-long-password"}
        assert client.post("/api/v1/me/password", json=change).status_code == 503
        assert client.delete("/api/v1/me", json={"password": PASSWORD}).status_code == 503
        assert client.get("/api/v1/me").status_code == 200  # nothing was changed or erased

    def test_other_limited_requests_are_refused_too(
        self, client: FlaskClient, redis_down: None
    ) -> None:
        response = client.post("/api/v1/auth/register", json={"email": "nope"})
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "service_unavailable"

    def test_there_is_no_in_memory_fallback(self, tmp_path: Path) -> None:
        config = build_config(tmp_path, {"REDIS_URL": "redis://cache:6379/0"})
        assert config["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] is False
        assert config["RATELIMIT_SWALLOW_ERRORS"] is False
        assert config["RATELIMIT_STORAGE_OPTIONS"]["socket_timeout"] <= 1


def odd_requests(client: FlaskClient, email: str, address: str) -> list[Any]:
    """Requests whose content once made a limit's key fail (a 500, and the limiter then
    counting in memory for every later request of that process)."""
    environ = {"REMOTE_ADDR": address}
    huge = b'{"email": "' + b"a" * 2_000_000 + b'", "password": "x"}'
    return [
        client.post(
            "/api/v1/auth/login",
            json={"email": "\ud800@x.org", "password": "x"},
            environ_base=environ,
        ),
        client.post(
            "/api/v1/auth/login",
            json={"email": "a" * 100_000 + "@x.org", "password": "x"},
            environ_base=environ,
        ),
        client.post(
            "/api/v1/auth/login", data=huge, content_type="application/json", environ_base=environ
        ),
        client.post(
            "/api/v1/auth/login",
            data="[" * 100_000,
            content_type="application/json",
            environ_base=environ,
        ),
        client.post(
            "/admin/login", data={"email": email, "password": "x" * 2_000_000}, environ_base=environ
        ),
        client.post(
            "/api/v1/auth/register",
            data=huge,
            content_type="application/json",
            environ_base=environ,
        ),
    ]


def test_no_content_makes_a_limit_fail(client: FlaskClient, db: Session) -> None:
    user = make_user(db)
    for address in ["198.51.100.7", *ODD_ADDRESSES]:
        statuses = [response.status_code for response in odd_requests(client, user.email, address)]
        assert all(status < 500 for status in statuses), (address, statuses)
        assert login(client, user.email, "wrong-password").status_code in {401, 429}
    assert limiter._storage_dead is False


def test_a_blocked_address_stays_blocked_whatever_else_it_sends(
    client: FlaskClient, db: Session
) -> None:
    user = make_user(db)
    address = "198.51.100.7"

    def guess(password: str = "wrong-password") -> int:  # noqa: S107
        body = {"email": user.email, "password": password}
        return client.post(
            "/api/v1/auth/login", json=body, environ_base={"REMOTE_ADDR": address}
        ).status_code

    assert [guess() for _ in range(10)] == [401] * 10
    for _ in range(3):
        odd_requests(client, user.email, address)
        assert guess() == 429
        assert guess(PASSWORD) == 429
    assert limiter._storage_dead is False


@pytest.mark.parametrize(
    ("address", "client", "site"),
    [
        ("198.51.100.7", "198.51.100.7", "198.51.100.7"),
        ("::ffff:198.51.100.7", "198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("fe80::1%eth0", "fe80::/64", "fe80::/48"),
        ("not an address", "unparsed", "unparsed"),
        ("ÿ" * 4000, "unparsed", "unparsed"),
        (None, "unparsed", "unparsed"),
    ],
)
def test_client_keys_are_short_and_never_raise(address: str | None, client: str, site: str) -> None:
    assert client_key(address) == client
    assert client_site(address) == site
