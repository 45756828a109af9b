"""Carers acting for patients.

A patient invites someone by email (the message carries a one-time code; only its hash is
kept). The invited person accepts with the code while signed in to a patient account with that
address; from then on they may do for the patient what the patient may do with requests,
bookings, courses and reviews, and they get the patient's booking messages. The patient can
revoke it at any time, and the carer can step down. Their own account stays theirs: a carer
never reaches the patient's account, profile or other carers.

Every function takes a session, may flush, and never commits.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import LIVE, CarerGrant, CarerStatus, Role, User
from marketplace.booking.models import Booking
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationFailed
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import queue_notification

CODE_BYTES = 24
INVITATION_LIFETIME = timedelta(days=7)
MAX_LIVE_GRANTS = 5
INVITATION_TEMPLATE = "carer_invitation"
REVOKED = "The carer no longer acts for the patient."


class AlreadyInvited(Conflict):
    code = "already_invited"
    message = "This address already has an invitation or is already your carer."


class TooManyCarers(Conflict):
    code = "too_many_carers"
    message = f"You can have at most {MAX_LIVE_GRANTS} carers and invitations at once."


class InvitationInvalid(NotFound):
    code = "invitation_invalid"
    message = "This invitation code is wrong, used, revoked or expired."


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _require_patient(user: User) -> None:
    if user.role is not Role.PATIENT:
        raise Forbidden("Only patient accounts have carers or act as one.", code="patients_only")


# --- inviting, accepting, ending -----------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    grant: CarerGrant
    code: str  # only in the email to the invited address, never in an answer to the patient


def invite_carer(session: Session, patient: User, email: str, now: datetime) -> Invitation:
    """An invitation to `email`, sent after commit with a one-time code. Whether the address has
    an account is not revealed."""
    _require_patient(patient)
    email = email.lower()
    if email == patient.email:
        raise ValidationFailed.for_field("email", "Invite someone else: this is your address.")
    session.execute(select(User.id).where(User.id == patient.id).with_for_update())
    live = session.scalars(
        select(CarerGrant).where(CarerGrant.patient_id == patient.id, _live(now))
    ).all()
    if any(grant.email == email for grant in live):
        raise AlreadyInvited()
    if len(live) >= MAX_LIVE_GRANTS:
        raise TooManyCarers()
    _retire_expired(session, patient.id, email, now)
    code = secrets.token_urlsafe(CODE_BYTES)
    grant = CarerGrant(
        id=uuid.uuid4(),
        patient_id=patient.id,
        email=email,
        status=CarerStatus.INVITED,
        code_hash=_hash(code),
        invited_at=now,
        expires_at=now + INVITATION_LIFETIME,
    )
    try:
        with session.begin_nested():
            session.add(grant)
    except IntegrityError:  # the same invitation made twice at once
        raise AlreadyInvited() from None
    queue_notification(
        session,
        user_id=patient.id,
        address=email,
        template=INVITATION_TEMPLATE,
        subject_type="carer_grant",
        subject_id=grant.id,
        dedupe_key=f"carer_grant:{grant.id}:invitation",
        context={"code": code, "expires_at": grant.expires_at.isoformat()},
    )
    return Invitation(grant, code)


def _live(now: datetime) -> ColumnElement[bool]:
    """Active grants, and invitations not yet expired."""
    return or_(
        CarerGrant.status == CarerStatus.ACTIVE,
        (CarerGrant.status == CarerStatus.INVITED) & (CarerGrant.expires_at > now),
    )


def _retire_expired(session: Session, patient_id: uuid.UUID, email: str, now: datetime) -> None:
    """An expired invitation to this address makes way for a new one."""
    session.execute(
        update(CarerGrant)
        .where(
            CarerGrant.patient_id == patient_id,
            CarerGrant.email == email,
            CarerGrant.status == CarerStatus.INVITED,
            CarerGrant.expires_at <= now,
        )
        .values(status=CarerStatus.REVOKED, code_hash=None, revoked_at=now)
        .execution_options(synchronize_session=False)
    )


def accept_invitation(session: Session, carer: User, code: str, now: datetime) -> CarerGrant:
    """The invited person, signed in with the invited address, becomes the patient's carer."""
    _require_patient(carer)
    grant = session.scalar(
        select(CarerGrant).where(CarerGrant.code_hash == _hash(code)).with_for_update()
    )
    if grant is None or grant.status is not CarerStatus.INVITED or grant.expires_at <= now:
        raise InvitationInvalid()
    if grant.email != carer.email:
        raise Forbidden(
            "This invitation is for another email address: sign in with the invited address.",
            code="invitation_for_another_address",
        )
    if grant.patient_id == carer.id:
        raise InvitationInvalid()
    grant.status, grant.carer_id = CarerStatus.ACTIVE, carer.id
    grant.accepted_at, grant.code_hash = now, None
    _forget_invitation_codes(session, [grant])
    session.flush()
    return grant


def end_grant(session: Session, actor: User, grant_id: uuid.UUID, now: datetime) -> CarerGrant:
    """The patient revokes an invitation or a carer, or the carer steps down. At once: the
    carer's next request is refused, and messages still waiting for them are dropped."""
    grant = session.get(CarerGrant, grant_id, with_for_update=True)
    if grant is None or actor.id not in (grant.patient_id, grant.carer_id):
        raise NotFound("No such carer.")
    if grant.status is CarerStatus.REVOKED:
        raise Conflict("This has ended already.", code="carer_already_revoked")
    _end(session, [grant], actor, now)
    session.flush()
    return grant


def _end(session: Session, grants: list[CarerGrant], by: User, now: datetime) -> None:
    for grant in grants:
        grant.status, grant.code_hash = CarerStatus.REVOKED, None
        grant.revoked_at, grant.revoked_by_id = now, by.id
    _drop_waiting_messages(session, grants)
    _forget_invitation_codes(session, grants)


def _forget_invitation_codes(
    session: Session, grants: list[CarerGrant], *, addresses: bool = False
) -> None:
    """Once an invitation is used or ended its code is of no use: the outbox row forgets it
    (and, on erasure, the address it went to)."""
    values: dict[str, Any] = {"context": {}} | ({"address": None} if addresses else {})
    session.execute(
        update(Notification)
        .where(
            Notification.subject_type == "carer_grant",
            Notification.subject_id.in_([grant.id for grant in grants]),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )


WAITING = (NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.FAILED)


def _drop_waiting_messages(session: Session, grants: Iterable[CarerGrant]) -> None:
    """An unsent invitation, and the carer's unsent messages about the patient's bookings (one
    being sent now is dropped when it comes back from its lease; a failed one is not retried)."""
    for grant in grants:
        about_patient = or_(
            (Notification.subject_type == "carer_grant") & (Notification.subject_id == grant.id),
            (Notification.user_id == grant.carer_id)
            & (Notification.subject_type == "booking")
            & Notification.subject_id.in_(
                select(Booking.id).where(Booking.patient_id == grant.patient_id)
            ),
        )
        session.execute(
            update(Notification)
            .where(about_patient, Notification.status.in_(WAITING))
            .values(
                status=NotificationStatus.DROPPED, dropped_reason=REVOKED, lease_expires_at=None
            )
            .execution_options(synchronize_session=False)
        )


def end_all_grants(session: Session, user: User, now: datetime) -> None:
    """On erasure: every grant the user made or holds ends, and the addresses are cleared."""
    grants = session.scalars(
        select(CarerGrant).where(
            or_(CarerGrant.patient_id == user.id, CarerGrant.carer_id == user.id)
        )
    ).all()
    _end(session, [grant for grant in grants if grant.status in LIVE], user, now)
    _forget_invitation_codes(session, list(grants), addresses=True)
    for grant in grants:
        grant.email = None
    session.flush()


# --- reading -----------------------------------------------------------------------------------


def grants_of_patient(session: Session, patient: User) -> list[CarerGrant]:
    """The patient's carers and invitations, newest first (ended ones too, as a record)."""
    _require_patient(patient)
    return list(
        session.scalars(
            select(CarerGrant)
            .where(CarerGrant.patient_id == patient.id)
            .order_by(CarerGrant.invited_at.desc(), CarerGrant.id)
        )
    )


def grants_held(session: Session, carer: User) -> list[CarerGrant]:
    """The patients this user is an active carer for."""
    return list(
        session.scalars(
            select(CarerGrant)
            .where(CarerGrant.carer_id == carer.id, CarerGrant.status == CarerStatus.ACTIVE)
            .order_by(CarerGrant.accepted_at, CarerGrant.id)
        )
    )
