from __future__ import annotations

from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts import service
from marketplace.accounts.models import AccessToken, Role, TokenKind, User
from marketplace.db import utcnow
from marketplace.errors import ValidationFailed
from tests.support.accounts import PASSWORD, login, register

POLICY = service.SessionPolicy(idle=timedelta(minutes=30), absolute=timedelta(hours=12))


def make_user(db: Session, email: str = "u@example.org", role: Role = Role.PATIENT) -> User:
    return service.create_user(db, email=email, password=PASSWORD, full_name="U", role=role)


def test_database_refuses_mixed_case_email(db: Session) -> None:
    db.add(User(email="Mixed@Example.org", full_name="M", role=Role.PATIENT, password_hash="x"))
    with pytest.raises(IntegrityError):
        db.flush()


def test_authenticate_rehashes_an_outdated_hash(db: Session) -> None:
    from argon2 import PasswordHasher

    user = make_user(db)
    user.password_hash = PasswordHasher(time_cost=1, memory_cost=8 * 1024).hash(PASSWORD)
    service.authenticate(db, "U@example.org", PASSWORD)
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("020 7946 0123", "+442079460123"),
        ("+44 7911 123456", "+447911123456"),
        ("+1 212 555 0100", "+12125550100"),
        ("+44 20 1234", None),
        ("call me", None),
    ],
)
def test_phone_numbers_are_stored_as_e164(written: str, stored: str | None) -> None:
    if stored is None:
        with pytest.raises(ValidationFailed):
            service.normalise_phone(written)
    else:
        assert service.normalise_phone(written) == stored


def test_session_ends_after_idle_time(db: Session) -> None:
    user = make_user(db)
    start = utcnow()
    issued = service.start_login_session(db, user, POLICY, now=start)
    later = start + timedelta(minutes=29)
    assert service.resolve_token(db, issued.secret, TokenKind.SESSION, POLICY, now=later)
    # used at minute 29, so still live at minute 58 ...
    assert service.resolve_token(
        db, issued.secret, TokenKind.SESSION, POLICY, now=later + timedelta(minutes=29)
    )
    # ... but not after 30 idle minutes
    assert not service.resolve_token(
        db, issued.secret, TokenKind.SESSION, POLICY, now=later + timedelta(minutes=60)
    )


def test_session_ends_at_its_absolute_lifetime_even_when_busy(db: Session) -> None:
    user = make_user(db)
    start = utcnow()
    issued = service.start_login_session(db, user, POLICY, now=start)
    moment = start
    while moment < start + timedelta(hours=12) - timedelta(minutes=10):
        moment += timedelta(minutes=10)
        assert service.resolve_token(db, issued.secret, TokenKind.SESSION, POLICY, now=moment)
    assert not service.resolve_token(
        db, issued.secret, TokenKind.SESSION, POLICY, now=start + timedelta(hours=12)
    )


def test_session_secret_is_not_an_api_token(db: Session) -> None:
    user = make_user(db)
    issued = service.start_login_session(db, user, POLICY)
    assert service.resolve_token(db, issued.secret, TokenKind.API) is None


def test_tokens_of_a_deactivated_user_stop_working(db: Session) -> None:
    user = make_user(db)
    issued = service.issue_token(db, user, TokenKind.API, name="x")
    user.is_active = False
    assert service.resolve_token(db, issued.secret, TokenKind.API) is None


def test_purge_removes_only_long_dead_tokens(db: Session) -> None:
    user = make_user(db)
    now = utcnow()
    live = service.issue_token(db, user, TokenKind.API).record
    recently_revoked = service.issue_token(db, user, TokenKind.API).record
    recently_revoked.revoked_at = now - timedelta(days=1)
    long_revoked = service.issue_token(db, user, TokenKind.API).record
    long_revoked.revoked_at = now - timedelta(days=40)
    long_expired = service.start_login_session(db, user, POLICY, now=now - timedelta(days=40))
    db.flush()
    assert service.purge_dead_tokens(db, older_than=timedelta(days=30), now=now) == 2
    remaining = set(db.scalars(select(AccessToken.id)))
    assert remaining == {live.id, recently_revoked.id}
    assert long_expired.record.id not in remaining


def test_revoking_twice_keeps_the_first_time(db: Session) -> None:
    user = make_user(db)
    token = service.issue_token(db, user, TokenKind.API).record
    first = utcnow() - timedelta(hours=1)
    service.revoke_token(db, token, now=first)
    service.revoke_token(db, token)
    assert token.revoked_at == first


def test_deleting_a_user_deletes_their_tokens(client: FlaskClient, db: Session) -> None:
    register(client)
    login(client)
    user = db.scalars(select(User)).one()
    db.delete(user)
    db.flush()
    assert db.scalar(select(AccessToken)) is None
