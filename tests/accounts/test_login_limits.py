"""Failed-login limits (issue 19): per client address and account, per account from anywhere
(ASVS V2.2.1), and per address only as a high ceiling, so many people behind one address (a care
home behind one NAT) are not locked out by a few people's typos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits import parse_many
from sqlalchemy.orm import Session

from marketplace.config import build_config
from tests.conftest import PASSWORD
from tests.factories import make_user

CARE_HOME = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


def attempt(
    client: FlaskClient,
    email: str,
    password: str = "wrong-password",  # noqa: S107
    address: str = CARE_HOME,
) -> Any:
    return client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def failures(client: FlaskClient, email: str, count: int, address: str = CARE_HOME) -> list[int]:
    return [attempt(client, email, address=address).status_code for _ in range(count)]


def per_hour(limit: str) -> int:
    """The most failures a limit string allows in one hour."""
    return min(item.amount * max(1, 3600 // item.get_expiry()) for item in parse_many(limit))


def test_typos_on_one_account_do_not_lock_out_another_from_the_same_address(
    client: FlaskClient, db: Session
) -> None:
    typist, colleague = make_user(db), make_user(db)
    assert failures(client, typist.email, 12) == [401] * 10 + [429] * 2
    assert attempt(client, colleague.email).status_code == 401  # still asked, not refused
    assert attempt(client, colleague.email, PASSWORD).status_code == 200


def test_past_the_address_and_account_limit_that_pair_is_refused_and_no_other(
    client: FlaskClient, db: Session
) -> None:
    target, neighbour = make_user(db), make_user(db)
    assert failures(client, target.email, 10) == [401] * 10
    refused = attempt(client, target.email, PASSWORD)
    assert refused.status_code == 429
    assert refused.json["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert attempt(client, neighbour.email).status_code == 401
    assert attempt(client, target.email, PASSWORD, address=ELSEWHERE).status_code == 200


def test_one_account_takes_at_most_100_failures_however_few_addresses_send_them(
    client: FlaskClient, db: Session
) -> None:
    target, neighbour = make_user(db), make_user(db)
    addresses = [f"192.0.2.{number}" for number in range(1, 11)]
    for address in addresses:
        assert failures(client, target.email, 10, address) == [401] * 10
    assert attempt(client, target.email, PASSWORD, address=ELSEWHERE).status_code == 429
    assert attempt(client, neighbour.email, PASSWORD, address=addresses[0]).status_code == 200


def test_an_address_has_a_ceiling_on_failures_over_every_account(
    app: Flask, client: FlaskClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RATELIMIT_FAILED_LOGIN_ADDRESS", "15 per hour")
    resident = make_user(db)
    spray = [attempt(client, f"guess{number}@example.org").status_code for number in range(15)]
    assert spray == [401] * 15
    assert attempt(client, resident.email, PASSWORD).status_code == 429  # even the right one
    assert attempt(client, resident.email, PASSWORD, address=ELSEWHERE).status_code == 200


def test_by_default_a_busy_address_can_make_many_mistakes(client: FlaskClient, db: Session) -> None:
    colleague = make_user(db)
    typos = [attempt(client, f"typo{number}@example.org").status_code for number in range(60)]
    assert typos == [401] * 60
    assert attempt(client, colleague.email, PASSWORD).status_code == 200


def test_the_default_limits_keep_their_order(tmp_path: Path) -> None:
    config = build_config(tmp_path, {"SECRET_KEY": "limits"})
    address_and_account = per_hour(config["RATELIMIT_FAILED_LOGIN"])
    account = per_hour(config["RATELIMIT_FAILED_LOGIN_ACCOUNT"])
    address = per_hour(config["RATELIMIT_FAILED_LOGIN_ADDRESS"])
    assert address >= 300  # several hundred an hour: a ceiling, not the everyday limit
    assert account < address
    # No single address can spend an account's whole budget on its own.
    assert address_and_account < account


def test_an_email_with_a_lone_surrogate_is_refused_as_invalid_not_a_crash(
    client: FlaskClient,
) -> None:
    response = attempt(client, "\ud800@x.org")
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_failed"
