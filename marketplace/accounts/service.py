"""Account rules: registration, login, access tokens, password changes.

Every function takes a session, may flush, and never commits.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import AccessToken, Role, TokenKind, User
from marketplace.accounts.passwords import (
    DUMMY_HASH,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from marketplace.db import utcnow
from marketplace.errors import Conflict, DomainError, NotFound, ValidationFailed
from marketplace.pagination import Page, paginate

SELF_SERVICE_ROLES = frozenset({Role.PATIENT, Role.PRACTITIONER})
API_TOKEN_PREFIX = "mkt_"  # noqa: S105 (a visible prefix, not a secret)


class InvalidCredentials(DomainError):
    status = 401
    code = "invalid_credentials"
    message = "The email or password is wrong."


class WrongPassword(ValidationFailed):
    """The password a signed-in request confirms itself with is wrong (422, like any field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(details={"fields": {field: [message]}})


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta
    absolute: timedelta


@dataclass(frozen=True)
class IssuedToken:
    """A freshly made token: the secret is only ever available here, once."""

    record: AccessToken
    secret: str


def normalise_email(email: str) -> str:
    return email.strip().lower()


def normalise_phone(phone: str, default_region: str = "GB") -> str:
    """A valid phone number in E.164 (+447700900123); UK numbers may be written nationally."""
    try:
        parsed = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationFailed.for_field("phone", "Not a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationFailed.for_field("phone", "Not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def check_new_password(password: str, field: str = "password") -> None:
    problems = password_problems(password)
    if problems:
        raise ValidationFailed(details={"fields": {field: problems}})


def find_user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    phone: str | None = None,
) -> User:
    """A new account of any role; the HTTP edge only lets patients and practitioners register."""
    check_new_password(password)
    if find_user_by_email(session, email) is not None:
        raise EmailTaken()
    user = User(
        email=normalise_email(email),
        full_name=full_name.strip(),
        phone=normalise_phone(phone) if phone else None,
        role=role,
        password_hash=hash_password(password),
    )
    try:
        with session.begin_nested():  # a concurrent registration may win the unique email
            session.add(user)
    except IntegrityError as exc:
        raise EmailTaken() from exc
    return user


def register_user(
    session: Session,
    *,
    email: str,
    password: str,
    full_name: str,
    role: Role,
    phone: str | None = None,
) -> User:
    if role not in SELF_SERVICE_ROLES:
        raise ValidationFailed.for_field("role", "Choose patient or practitioner.")
    return create_user(
        session, email=email, password=password, full_name=full_name, role=role, phone=phone
    )


def authenticate(session: Session, email: str, password: str) -> User:
    """The active user with this email and password, rehashing if parameters changed."""
    user = find_user_by_email(session, email)
    if user is None:
        verify_password(DUMMY_HASH, password)  # same work as a real check: no timing oracle
        raise InvalidCredentials()
    if not verify_password(user.password_hash, password) or not user.is_active:
        raise InvalidCredentials()
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    session: Session,
    user: User,
    kind: TokenKind,
    *,
    name: str | None = None,
    expires_at: datetime | None = None,
) -> IssuedToken:
    secret = secrets.token_urlsafe(32)
    if kind is TokenKind.API:
        secret = API_TOKEN_PREFIX + secret
    record = AccessToken(
        user_id=user.id,
        kind=kind,
        name=name,
        token_hash=hash_token(secret),
        created_at=utcnow(),
        expires_at=expires_at,
    )
    session.add(record)
    session.flush()
    return IssuedToken(record=record, secret=secret)


def start_login_session(
    session: Session, user: User, policy: SessionPolicy, now: datetime | None = None
) -> IssuedToken:
    now = now or utcnow()
    return issue_token(session, user, TokenKind.SESSION, expires_at=now + policy.absolute)


def _token_is_live(token: AccessToken, now: datetime, policy: SessionPolicy | None) -> bool:
    if token.revoked_at is not None or not token.user.is_active:
        return False
    if token.expires_at is not None and token.expires_at <= now:
        return False
    if token.kind is TokenKind.SESSION and policy is not None:
        last_active = token.last_used_at or token.created_at
        if now - last_active >= policy.idle:
            return False
    return True


def resolve_token(
    session: Session,
    secret: str,
    kind: TokenKind,
    policy: SessionPolicy | None = None,
    now: datetime | None = None,
) -> AccessToken | None:
    """The live token of this kind for a presented secret, its last use noted; else None."""
    now = now or utcnow()
    token = session.scalar(
        select(AccessToken).where(
            AccessToken.token_hash == hash_token(secret), AccessToken.kind == kind
        )
    )
    if token is None or not _token_is_live(token, now, policy):
        return None
    # Note use at most once a minute, so a busy client does not write on every request.
    if token.last_used_at is None or now - token.last_used_at >= timedelta(minutes=1):
        token.last_used_at = now
    return token


def revoke_token(session: Session, token: AccessToken, now: datetime | None = None) -> None:
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()


def list_api_tokens(
    session: Session, user: User, limit: int, cursor: str | None
) -> Page[AccessToken]:
    """The user's live API tokens, oldest first."""
    query = select(AccessToken).where(
        AccessToken.user_id == user.id,
        AccessToken.kind == TokenKind.API,
        AccessToken.revoked_at.is_(None),
    )
    return paginate(session, query, AccessToken.created_at, AccessToken.id, limit, cursor)


def revoke_api_token(session: Session, user: User, token_id: uuid.UUID) -> None:
    """Revoke one of the user's own API tokens; another user's is 'not found'."""
    token = session.get(AccessToken, token_id)
    if (
        token is None
        or token.user_id != user.id
        or token.kind is not TokenKind.API
        or token.revoked_at is not None
    ):
        raise NotFound("No such token.")
    revoke_token(session, token)


def revoke_other_tokens(session: Session, user: User, keep: AccessToken | None) -> int:
    """End every session and API token of the user except `keep`; returns how many."""
    statement = update(AccessToken).where(
        AccessToken.user_id == user.id, AccessToken.revoked_at.is_(None)
    )
    if keep is not None:
        statement = statement.where(AccessToken.id != keep.id)
    result = session.execute(
        statement.values(revoked_at=utcnow()), execution_options={"synchronize_session": False}
    )
    session.expire_all()
    return int(result.rowcount)  # type: ignore[attr-defined]


def change_password(
    session: Session,
    user: User,
    *,
    current_password: str,
    new_password: str,
    current_token: AccessToken | None,
) -> None:
    if not verify_password(user.password_hash, current_password):
        raise WrongPassword("current_password", "The current password is wrong.")
    check_new_password(new_password, field="new_password")
    user.password_hash = hash_password(new_password)
    revoke_other_tokens(session, user, keep=current_token)


def purge_dead_tokens(
    session: Session, *, older_than: timedelta, now: datetime | None = None
) -> int:
    """Delete tokens that expired or were revoked more than `older_than` ago."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(
        delete(AccessToken).where(
            or_(AccessToken.revoked_at < cutoff, AccessToken.expires_at < cutoff)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
