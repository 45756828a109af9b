"""Failed-login limits (issues 19 and 20): per client address and account, per account from
anywhere (ASVS V2.2.1), and per address only as a high ceiling, so many people behind one address
(a care home behind one NAT) are not locked out by a few people's typos; a delay that grows with
an account's failures in a row for the addresses that failed on it, so guessing from a few
addresses cannot lock its owner out."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from limits import parse_many
from sqlalchemy.orm import Session

from marketplace.config import build_config
from tests.support.accounts import PASSWORD
from tests.support.factories import make_user

CARE_HOME = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


@dataclass
class Clock:
    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The failed-login counters' clock, moved by hand: delays are tested without waiting."""
    fake = Clock(time.time())
    monkeypatch.setattr(app.extensions["login_throttle"], "clock", fake)
    return fake


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
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) > 0
    assert attempt(client, neighbour.email).status_code == 401
    assert attempt(client, target.email, PASSWORD, address=ELSEWHERE).status_code == 200


def test_the_owner_gets_in_from_a_new_address_after_100_failures_from_12_others(
    client: FlaskClient, db: Session, clock: Clock
) -> None:
    """Lockout as a denial of service: guessing from a few addresses (here 100 failures from
    12, waiting as long as each refusal says) must not keep the owner out."""
    target = make_user(db)
    addresses = [f"192.0.2.{number}" for number in range(1, 13)]
    failed = 0
    for turn in range(1000):
        response = attempt(client, target.email, address=addresses[turn % len(addresses)])
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            assert response.status_code == 401
            failed += 1
            if failed == 100:
                break
    assert failed == 100
    assert attempt(client, target.email, PASSWORD, address=ELSEWHERE).status_code == 200


def test_an_address_that_failed_on_the_account_is_still_throttled(
    client: FlaskClient, db: Session, clock: Clock
) -> None:
    target = make_user(db)
    for number in range(1, 13):
        assert attempt(client, target.email, address=f"192.0.2.{number}").status_code == 401
    # Its delay runs: even the right password waits (else the owner's bypass is an oracle).
    refused = attempt(client, target.email, PASSWORD, address="192.0.2.1")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    # So does another IPv6 /64 of a /48 that failed: a /48 is a site, not a fresh start.
    assert attempt(client, target.email, address="2001:db8:5:1::1").status_code == 401
    assert attempt(client, target.email, PASSWORD, address="2001:db8:5:2::1").status_code == 429
    assert attempt(client, target.email, PASSWORD, address="2001:db8:6:1::1").status_code == 200


def test_the_delay_grows_with_failures_in_a_row(
    client: FlaskClient, db: Session, clock: Clock
) -> None:
    target = make_user(db)
    first, second = "192.0.2.1", "192.0.2.2"
    assert (
        failures(client, target.email, 5, first) + failures(client, target.email, 5, second)
        == [401] * 10
    )
    for delay in (1, 2, 4, 8, 16):
        refused = attempt(client, target.email, address=first)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == str(delay)
        assert attempt(client, target.email, address=second).status_code == 429
        clock.advance(delay)
        assert (
            attempt(client, target.email, address=second if delay % 2 else first).status_code == 401
        )
    # At most LOGIN_DELAY_MAX_SECONDS (300) between guesses, however many there were.
    for _ in range(5):
        retry = int(attempt(client, target.email, address=first).headers["Retry-After"])
        clock.advance(retry)
        assert attempt(client, target.email, address=first).status_code == 401
    assert int(attempt(client, target.email, address=first).headers["Retry-After"]) == 300
    # The right password ends the run: the next typo is not delayed.
    assert attempt(client, target.email, PASSWORD, address=ELSEWHERE).status_code == 200
    assert attempt(client, target.email, address=ELSEWHERE).status_code == 401


def test_an_hour_of_guessing_from_addresses_that_failed_takes_few_guesses(
    client: FlaskClient, db: Session, clock: Clock
) -> None:
    target = make_user(db)
    addresses = [f"192.0.2.{number}" for number in range(1, 13)]
    start, failed, turn = clock.now, 0, 0
    while clock.now - start < 3600:
        response = attempt(client, target.email, address=addresses[turn % len(addresses)])
        turn += 1
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            failed += 1
    # 12 guesses from new addresses (none delayed), which leave the account 12 failures in a
    # row; then waits of 4, 8, ... 256 s (508 s, seven guesses), then one guess every 300 s.
    assert failed == 12 + 7 + (3600 - 508) // 300 == 29


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
    assert account <= 100 < address  # ASVS V2.2.1
    # No single address can spend an account's whole budget on its own.
    assert address_and_account < account
    # The delay starts after no more failures in a row than one address may make a minute.
    assert (
        config["LOGIN_DELAY_AFTER_FAILURES"]
        <= parse_many(config["RATELIMIT_FAILED_LOGIN"])[0].amount
    )


def test_an_email_with_a_lone_surrogate_is_refused_as_invalid_not_a_crash(
    client: FlaskClient,
) -> None:
    response = attempt(client, "\ud800@x.org")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_failed"
