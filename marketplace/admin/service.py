"""Admin rules: the verification queue, credential decisions, suspension. Never commits."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload

from marketplace.accounts.models import Role, User
from marketplace.audit.service import record_audit
from marketplace.booking.bookings import cancel_visits_past_listing
from marketplace.db import utcnow
from marketplace.errors import Conflict, Forbidden, NotFound, ValidationFailed
from marketplace.notifications import service as notifications
from marketplace.notifications.models import Notification
from marketplace.notifications.service import queue_notification
from marketplace.pagination import Page, paginate
from marketplace.practitioners.listing import ListingDecision, listing_ends, refresh_listing
from marketplace.practitioners.models import (
    CREDENTIAL_LABELS,
    Credential,
    CredentialKind,
    CredentialStatus,
    ListingStatus,
    Practitioner,
)
from marketplace.practitioners.service import CredentialNotPending, number_held_elsewhere

MAX_VERIFICATION = timedelta(days=3 * 366)


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


def _require_admin(user: User) -> None:
    if user.role is not Role.ADMIN:
        raise Forbidden("Only admins decide on credentials.")


# What an admin sees with a credential: its files, and who the practitioner is.
_FOR_REVIEW = (
    selectinload(Credential.evidence),
    selectinload(Credential.practitioner).selectinload(Practitioner.user),
)


def credentials_queue(
    session: Session, status: CredentialStatus, limit: int, cursor: str | None
) -> Page[Credential]:
    """Credentials in a status, oldest submission first."""
    query = select(Credential).where(Credential.status == status).options(*_FOR_REVIEW)
    return paginate(session, query, Credential.submitted_at, Credential.id, limit, cursor)


def practitioners_for_admins(
    session: Session,
    status: ListingStatus | None,
    suspended: bool | None,
    limit: int,
    cursor: str | None,
) -> Page[Practitioner]:
    """Practitioners by listing status and/or suspension, newest first."""
    query = select(Practitioner).options(selectinload(Practitioner.user))
    if status is not None:
        query = query.where(Practitioner.status == status)
    if suspended is not None:
        query = query.where(
            Practitioner.suspended_at.is_not(None)
            if suspended
            else Practitioner.suspended_at.is_(None)
        )
    return paginate(
        session, query, Practitioner.created_at, Practitioner.id, limit, cursor, descending=True
    )


def credential_for_review(session: Session, credential_id: uuid.UUID) -> Credential:
    """One credential with its evidence and practitioner, for an admin to look at."""
    credential = session.scalar(
        select(Credential).where(Credential.id == credential_id).options(*_FOR_REVIEW)
    )
    if credential is None:
        raise NotFound("No such credential.")
    return credential


def _get_credential(session: Session, credential_id: uuid.UUID) -> Credential:
    # Locked, so two admins deciding at once are served one after the other.
    credential = session.get(Credential, credential_id, with_for_update=True)
    if credential is None:
        raise NotFound("No such credential.")
    return credential


def _check_approval(
    credential: Credential, expires_on: date | None, register_check: str | None, today: date
) -> date | None:
    """The expiry the admin confirmed. An HCPC registration needs the date the register shows;
    an NMT certificate may keep the expiry printed on it (or have none)."""
    problems: dict[str, list[str]] = {}
    if not register_check:
        problems["register_check"] = ["Record what the register or certificate check showed."]
    expiry = expires_on
    if expiry is None and credential.kind is CredentialKind.NMT_CERTIFICATE:
        expiry = credential.expires_on
    if credential.kind is CredentialKind.HCPC and expiry is None:
        problems["expires_on"] = ["An HCPC registration needs the expiry date the register shows."]
    elif expiry is not None and expiry < today:
        problems["expires_on"] = ["This date has passed: the credential has already expired."]
    elif expiry is not None and expiry > today + MAX_VERIFICATION:
        problems["expires_on"] = ["Verify for at most three years; check the date again."]
    if problems:
        raise ValidationFailed(details={"fields": problems})
    return expiry


def _supersede_older_verifications(session: Session, credential: Credential) -> None:
    session.execute(
        update(Credential)
        .where(
            Credential.practitioner_id == credential.practitioner_id,
            Credential.kind == credential.kind,
            Credential.status == CredentialStatus.VERIFIED,
            Credential.id != credential.id,
        )
        .values(status=CredentialStatus.SUPERSEDED),
        execution_options={"synchronize_session": "fetch"},
    )


def decide_credential(
    session: Session,
    admin: User,
    credential_id: uuid.UUID,
    *,
    decision: Decision,
    reason: str | None,
    expires_on: date | None,
    register_check: str | None,
    today: date,
) -> Credential:
    """Approve (with the register check and an expiry date) or reject (with a reason)."""
    _require_admin(admin)
    credential = _get_credential(session, credential_id)
    practitioner = credential.practitioner
    if practitioner.user_id == admin.id:
        raise Forbidden("Nobody may decide on their own credential.")
    if credential.status is not CredentialStatus.PENDING:
        raise CredentialNotPending()
    if decision is Decision.APPROVE:
        credential.expires_on = _check_approval(credential, expires_on, register_check, today)
        if number_held_elsewhere(
            session,
            credential.kind,
            credential.number,
            credential.practitioner_id,
            (CredentialStatus.VERIFIED,),
        ):
            raise Conflict(
                "Another practitioner holds this number verified.", code="credential_number_in_use"
            )
        _supersede_older_verifications(session, credential)
        credential.status = CredentialStatus.VERIFIED
        credential.register_check = register_check
    else:
        if not reason:
            raise ValidationFailed.for_field("reason", "Say why the credential is rejected.")
        credential.status = CredentialStatus.REJECTED
    credential.decision_reason = reason
    credential.decided_at = utcnow()
    credential.decided_by_id = admin.id
    session.flush()
    now = utcnow()
    ended = listing_ends(practitioner, now)
    listing = refresh_listing(session, practitioner, today, actor_id=admin.id)
    cancel_visits_past_listing(session, practitioner, ended, now=now, actor_id=admin.id)
    record_audit(
        session,
        actor_id=admin.id,
        action=f"credential.{'approved' if decision is Decision.APPROVE else 'rejected'}",
        subject_type="credential",
        subject_id=credential.id,
        details={
            "practitioner_id": str(practitioner.id),
            "expires_on": credential.expires_on.isoformat() if credential.expires_on else None,
        },
    )
    _tell_practitioner_of_decision(session, credential, decision, listing)
    return credential


def _tell_practitioner_of_decision(
    session: Session, credential: Credential, decision: Decision, listing: ListingDecision
) -> None:
    approved = decision is Decision.APPROVE
    queue_notification(
        session,
        user_id=credential.practitioner.user_id,
        template="credential_approved" if approved else "credential_rejected",
        subject_type="credential",
        subject_id=credential.id,
        dedupe_key=f"credential:{credential.id}:{decision.value}",
        context={
            "credential_label": CREDENTIAL_LABELS[credential.kind],
            "number": credential.number,
            "expires_on": credential.expires_on.isoformat()
            if credential.expires_on
            else "no expiry",
            "reason": credential.decision_reason or "",
            "listed": listing.status is ListingStatus.LISTED,
            "listing_hint": "complete your profile."
            if listing.reason == "profile_incomplete"
            else "",
        },
    )


def _get_practitioner(session: Session, practitioner_id: uuid.UUID) -> Practitioner:
    practitioner = session.get(Practitioner, practitioner_id, with_for_update=True)
    if practitioner is None:
        raise NotFound("No such practitioner.")
    return practitioner


def _record_suspension_change(
    session: Session,
    admin: User,
    practitioner: Practitioner,
    change: str,
    reason: str,
    since: datetime,
    context: dict[str, Any],
) -> None:
    """Audit a suspension or reinstatement and tell the practitioner (once per suspension).
    The reason stays on the practitioner's row and in the message, not in the audit log, which
    holds ids and actions only (a reason may describe a complaint about care)."""
    record_audit(
        session,
        actor_id=admin.id,
        action=f"practitioner.{change}",
        subject_type="practitioner",
        subject_id=practitioner.id,
    )
    queue_notification(
        session,
        user_id=practitioner.user_id,
        template=f"practitioner_{change}",
        subject_type="practitioner",
        subject_id=practitioner.id,
        dedupe_key=f"practitioner:{practitioner.id}:{change}:{since.isoformat()}",
        context=context,
    )


def suspend_practitioner(
    session: Session, admin: User, practitioner_id: uuid.UUID, reason: str, today: date
) -> Practitioner:
    _require_admin(admin)
    practitioner = _get_practitioner(session, practitioner_id)
    if practitioner.suspended_at is not None:
        raise Conflict("This practitioner is already suspended.", code="already_suspended")
    suspended_at = utcnow()
    ended = listing_ends(practitioner, suspended_at)
    practitioner.suspended_at = suspended_at
    practitioner.suspension_reason = reason
    refresh_listing(session, practitioner, today, actor_id=admin.id)
    cancel_visits_past_listing(session, practitioner, ended, now=suspended_at, actor_id=admin.id)
    _record_suspension_change(
        session, admin, practitioner, "suspended", reason, suspended_at, {"reason": reason}
    )
    return practitioner


def reinstate_practitioner(
    session: Session, admin: User, practitioner_id: uuid.UUID, reason: str, today: date
) -> Practitioner:
    _require_admin(admin)
    practitioner = _get_practitioner(session, practitioner_id)
    if practitioner.suspended_at is None:
        raise Conflict("This practitioner is not suspended.", code="not_suspended")
    suspended_at = practitioner.suspended_at
    practitioner.suspended_at = None
    practitioner.suspension_reason = None
    listing = refresh_listing(session, practitioner, today, actor_id=admin.id)
    _record_suspension_change(
        session,
        admin,
        practitioner,
        "reinstated",
        reason,
        suspended_at,
        {"listed": listing.status is ListingStatus.LISTED},
    )
    return practitioner


def retry_notification(session: Session, admin: User, notification_id: uuid.UUID) -> Notification:
    """A failed message goes out again (audited)."""
    notification = notifications.retry_notification(session, notification_id)
    record_audit(
        session,
        actor_id=admin.id,
        action="notification.retry",
        subject_type="notification",
        subject_id=notification.id,
    )
    return notification
