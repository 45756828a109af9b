"""UK GDPR: a copy of everything stored about a user (right of access), and erasure.

Erasure keeps what the business must keep and nothing that says who the person was:
- the user row stays (bookings, requests and the audit log point at its id) with the name,
  email, phone and password replaced; it can never log in again and the email is free;
- future visits are cancelled, each as an ordinary cancellation (the other party is told);
- care requests lose their notes, address and postcode (the point is kept to about 10 km, with the
  outward code, since a home request must have one); bookings keep ids, times, mode and status (the
  practitioner's work record, and what the books need), but lose the address and meeting room;
- a practitioner is delisted; their profile text, languages, base location, hours and any
  suspension reason cleared; their evidence files and rows deleted. The credential rows keep the
  kind, number, status and dates (the record of who was verified, when and by whom; the number
  is public on the HCPC register anyway), without the admins' free-text notes;
- carers they had, invitations they sent and patients they cared for all end, the invited
  addresses cleared (the grants stay, with ids and dates, as the record of who could act when);
- messages not yet sent to them are dropped, and every message's context (and the address of an
  invitation they sent) cleared; reasons they gave for cancelling and the names of their tokens
  are cleared; the audit log records `account.erased` with ids only.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session, selectinload

from marketplace.accounts import service as accounts
from marketplace.accounts.models import AccessToken, CarerGrant, Role, User
from marketplace.audit.models import AuditEntry
from marketplace.audit.service import record_audit
from marketplace.booking import bookings
from marketplace.booking.models import TIME_HOLDING, Booking, CareRequest, RequestStatus
from marketplace.caregivers import service as carers
from marketplace.db import after_commit
from marketplace.errors import Conflict
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.practitioners.listing import refresh_listing
from marketplace.practitioners.models import (
    AvailabilityException,
    Credential,
    Evidence,
    Practitioner,
    WeeklyRule,
)
from marketplace.reviews.models import Review
from marketplace.storage import ObjectStore, StorageUnavailable

log = logging.getLogger(__name__)

ERASED_NAME = "Erased account"
CANCELLED_FOR_ERASURE = "The account was closed."
DISTRICT_DECIMALS = 1

# --- export ------------------------------------------------------------------------------------


def _plain(row: Any, *skip: str) -> dict[str, Any]:
    """A row's columns as JSON-ready values (secrets and internal keys left out)."""
    values: dict[str, Any] = {}
    for column in row.__table__.columns:
        if column.key in skip:
            continue
        value = getattr(row, column.key)
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime | date | time):
            value = value.isoformat()
        elif hasattr(value, "value"):  # an enum
            value = value.value
        values[column.key] = value
    return values


def export_account(session: Session, user: User) -> dict[str, Any]:
    """Everything stored about `user`, as JSON-ready data."""
    practitioner = session.scalar(
        select(Practitioner)
        .where(Practitioner.user_id == user.id)
        .options(
            selectinload(Practitioner.specialties),
            selectinload(Practitioner.weekly_rules),
            selectinload(Practitioner.exceptions),
            selectinload(Practitioner.credentials).selectinload(Credential.evidence),
        )
    )
    visits = _bookings_of(session, user, practitioner)
    subjects = [user.id] + ([practitioner.id] if practitioner else [])
    return {
        "account": _plain(user, "password_hash"),
        "logins_and_tokens": [
            _plain(token, "token_hash", "user_id")
            for token in session.scalars(select(AccessToken).where(AccessToken.user_id == user.id))
        ],
        "practitioner": _practitioner_export(practitioner) if practitioner else None,
        "care_requests": [
            _plain(request)
            for request in session.scalars(
                select(CareRequest).where(CareRequest.patient_id == user.id)
            )
        ],
        "bookings": [_booking_export(booking, user) for booking in visits],
        "messages": [
            _message_export(message)
            for message in session.scalars(
                select(Notification).where(Notification.user_id == user.id)
            )
        ],
        "carers": [
            _plain(grant, "code_hash")
            for grant in session.scalars(
                select(CarerGrant).where(
                    or_(CarerGrant.patient_id == user.id, CarerGrant.carer_id == user.id)
                )
            )
        ],
        "reviews": [
            _plain(review)
            for review in session.scalars(select(Review).where(Review.author_id == user.id))
        ],
        "audit": [
            _plain(entry, "details")
            for entry in session.scalars(
                select(AuditEntry).where(
                    or_(AuditEntry.actor_id == user.id, AuditEntry.subject_id.in_(subjects))
                )
            )
        ],
    }


def _message_export(message: Notification) -> dict[str, Any]:
    """A message without an invitation's one-time code (a secret for the invited person)."""
    exported = _plain(message)
    exported["context"] = {k: v for k, v in message.context.items() if k != "code"}
    return exported


def _practitioner_export(practitioner: Practitioner) -> dict[str, Any]:
    return {
        **_plain(practitioner),
        "specialties": [item.slug for item in practitioner.specialties],
        "weekly_rules": [_plain(rule, "practitioner_id") for rule in practitioner.weekly_rules],
        "exceptions": [_plain(item, "practitioner_id") for item in practitioner.exceptions],
        "credentials": [
            {
                **_plain(credential),
                "evidence": [_plain(file, "stored_name") for file in credential.evidence],
            }
            for credential in practitioner.credentials
        ],
    }


def _bookings_of(session: Session, user: User, practitioner: Practitioner | None) -> list[Booking]:
    mine = Booking.patient_id == user.id
    if practitioner is not None:
        mine = or_(mine, Booking.practitioner_id == practitioner.id)
    return list(session.scalars(select(Booking).where(mine).order_by(Booking.starts_at)))


def _booking_export(booking: Booking, user: User) -> dict[str, Any]:
    """The patient's own visits in full; a practitioner's without the patient's address."""
    hidden: tuple[str, ...] = ("idempotency_digest",)
    if booking.patient_id != user.id:
        hidden += ("address", "postcode", "latitude", "longitude")
    return _plain(booking, *hidden)


# --- erasure -----------------------------------------------------------------------------------


def erase_account(
    session: Session,
    user: User,
    password: str,
    *,
    now: datetime,
    today: date,
    policy: bookings.BookingPolicy,
    evidence_store: ObjectStore,
) -> None:
    """Erase the caller's personal data (they confirm with their password)."""
    if user.role is Role.ADMIN:
        raise Conflict(
            "An admin account is closed by another admin, not erased.", code="admin_not_erasable"
        )
    try:
        accounts.authenticate(session, user.email, password)
    except accounts.InvalidCredentials:
        raise accounts.WrongPassword("password", "The password is wrong.") from None
    practitioner = session.scalar(select(Practitioner).where(Practitioner.user_id == user.id))
    _cancel_future_visits(session, user, practitioner, now, policy)
    _erase_patient_data(session, user)
    if practitioner is not None:
        _erase_practitioner_data(session, user, practitioner, today, evidence_store)
    _forget_messages(session, user.id)
    carers.end_all_grants(session, user, now)
    _forget_own_words(session, user.id)
    accounts.revoke_other_tokens(session, user, keep=None)
    user.email = f"erased-{user.id.hex}@erased.invalid"
    user.full_name = ERASED_NAME
    user.phone = None
    user.password_hash = "!erased"  # matches no password  # noqa: S105
    user.is_active = False
    user.erased_at = now
    record_audit(
        session, actor_id=user.id, action="account.erased", subject_type="user", subject_id=user.id
    )
    session.flush()


def _cancel_future_visits(
    session: Session,
    user: User,
    practitioner: Practitioner | None,
    now: datetime,
    policy: bookings.BookingPolicy,
) -> None:
    upcoming = [
        booking
        for booking in _bookings_of(session, user, practitioner)
        if booking.status in TIME_HOLDING and booking.starts_at > now
    ]
    for booking in upcoming:
        bookings.cancel_booking(
            session, user, booking.id, CANCELLED_FOR_ERASURE, now=now, policy=policy
        )


def _erase_patient_data(session: Session, user: User) -> None:
    for request in session.scalars(select(CareRequest).where(CareRequest.patient_id == user.id)):
        request.notes = request.postcode = request.address = None
        if request.latitude is not None and request.longitude is not None:
            # A home request must keep a point: only the district's, to about 10 km.
            request.latitude = round(request.latitude, DISTRICT_DECIMALS)
            request.longitude = round(request.longitude, DISTRICT_DECIMALS)
        if request.status is RequestStatus.OPEN:
            request.status = RequestStatus.WITHDRAWN
    session.execute(
        update(Booking)
        .where(Booking.patient_id == user.id)
        .values(
            address=None,
            postcode=None,
            latitude=None,
            longitude=None,
            video_room=None,
            idempotency_key=None,
            idempotency_digest=None,
            cancellation_reason=None,
        )
        .execution_options(synchronize_session=False)
    )


def _erase_practitioner_data(
    session: Session, user: User, practitioner: Practitioner, today: date, store: ObjectStore
) -> None:
    user.is_active = False
    practitioner.bio = ""
    practitioner.languages = []
    practitioner.base_postcode = None
    practitioner.latitude = practitioner.longitude = None
    practitioner.suspension_reason = None
    refresh_listing(session, practitioner, today, actor_id=user.id)
    for rows in (WeeklyRule, AvailabilityException):
        session.execute(delete(rows).where(rows.practitioner_id == practitioner.id))
    session.execute(
        update(Credential)
        .where(Credential.practitioner_id == practitioner.id)
        .values(register_check=None, decision_reason=None)
        .execution_options(synchronize_session=False)
    )
    files = session.scalars(
        select(Evidence).join(Credential).where(Credential.practitioner_id == practitioner.id)
    ).all()
    _delete_after_commit(session, store, [file.stored_name for file in files])
    for file in files:
        session.delete(file)
    session.execute(
        update(Booking)
        .where(Booking.practitioner_id == practitioner.id)
        .values(video_room=None)
        .execution_options(synchronize_session=False)
    )


def _forget_own_words(session: Session, user_id: uuid.UUID) -> None:
    """Free text they wrote elsewhere: reasons they gave for cancelling, names of their tokens,
    the comments of reviews they (or a carer of theirs) wrote (the star ratings stay: they say
    nothing about who gave them)."""
    session.execute(
        update(Booking)
        .where(Booking.cancelled_by_id == user_id)
        .values(cancellation_reason=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(AccessToken)
        .where(AccessToken.user_id == user_id)
        .values(name=None)
        .execution_options(synchronize_session=False)
    )
    about_their_visits = Review.booking_id.in_(
        select(Booking.id).where(Booking.patient_id == user_id)
    )
    session.execute(
        update(Review)
        .where(or_(Review.author_id == user_id, about_their_visits))
        .values(comment=None)
        .execution_options(synchronize_session=False)
    )


def _delete_after_commit(session: Session, store: ObjectStore, keys: Iterable[str]) -> None:
    """Files go only once their rows are gone for good (a rolled-back erasure keeps both). One
    the store fails to delete is logged by its key (a random name) for an operator to remove."""
    kept = list(keys)

    def delete() -> None:
        for key in kept:
            try:
                store.delete(key)
            except StorageUnavailable:
                log.error("erased evidence %s is still in storage: delete it by hand", key)

    after_commit(session, delete)


def _forget_messages(session: Session, user_id: uuid.UUID) -> None:
    """Messages not yet out are dropped (one being sent now is dropped once it comes back from
    its lease); what any message to them was about (its context) is cleared."""
    session.execute(
        update(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.status.in_(
                [NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.FAILED]
            ),
        )
        .values(
            status=NotificationStatus.DROPPED,
            dropped_reason=CANCELLED_FOR_ERASURE,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Notification)
        .where(Notification.user_id == user_id)
        .values(context={}, address=None)
        .execution_options(synchronize_session=False)
    )
