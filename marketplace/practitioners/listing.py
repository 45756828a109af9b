"""The listing rule, in one place.

A practitioner is listed when the user is active, the practitioner is not suspended, the profile
is complete, and the credential their profession requires is verified and unexpired today
(a credential is valid through its `expires_on` date, in London). `evaluate_listing` applies the
rule; `refresh_listing` stores its answer (status, reason, `listed_until`) whenever an input
changes; readers select with `listed_clause(today)`, which also honours `listed_until` so a
credential that expired overnight delists at once, before the daily task records it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.audit.service import record_audit
from marketplace.clock import BUSINESS_ZONE
from marketplace.db import utcnow
from marketplace.errors import Forbidden, NotFound
from marketplace.notifications.service import queue_notification
from marketplace.practitioners.match_index import reindex
from marketplace.practitioners.models import (
    Credential,
    CredentialKind,
    CredentialStatus,
    ListingStatus,
    Practitioner,
    Profession,
)

REQUIRED_CREDENTIAL = {
    Profession.PHYSIOTHERAPIST: CredentialKind.HCPC,
    Profession.NEUROMUSCULAR_THERAPIST: CredentialKind.NMT_CERTIFICATE,
}
NMT_MINIMUM_HOURS = 450  # the platform's policy for neuromuscular therapists

REASON_TEXT = {
    "suspended": "an admin suspended your profile.",
    "account_inactive": "your account is deactivated.",
    "profile_incomplete": "your profile is missing required details.",
    "credential_missing": "the credential your profession requires is not verified.",
    "credential_expired": "the credential your profession requires has expired.",
}


@dataclass(frozen=True)
class ListingDecision:
    status: ListingStatus
    reason: str | None
    listed_until: date | None


def credential_is_valid(credential: Credential, today: date) -> bool:
    return credential.status is CredentialStatus.VERIFIED and (
        credential.expires_on is None or credential.expires_on >= today
    )


def qualifies(credential: Credential, profession: Profession) -> bool:
    """Whether this credential is the kind the profession needs (a physiotherapist's HCPC
    registration is in the PH part of the register; an NMT certificate has 450+ hours)."""
    if credential.kind is not REQUIRED_CREDENTIAL[profession]:
        return False
    if credential.kind is CredentialKind.HCPC:
        return profession is not Profession.PHYSIOTHERAPIST or credential.number.startswith("PH")
    return (credential.training_hours or 0) >= NMT_MINIMUM_HOURS


def listing_credential(practitioner: Practitioner, today: date) -> Credential | None:
    """The valid, qualifying credential that lasts longest, if any."""
    valid = [
        credential
        for credential in practitioner.credentials
        if qualifies(credential, practitioner.profession) and credential_is_valid(credential, today)
    ]
    return max(valid, key=lambda c: c.expires_on or date.max, default=None)


def listing_ends_at(listed_until: date) -> datetime:
    """The moment a listing valid through `listed_until` ends: midnight after that London date.
    No visit may run past it."""
    return datetime.combine(listed_until + timedelta(days=1), time(), BUSINESS_ZONE)


def listing_ends(practitioner: Practitioner, now: datetime) -> datetime | None:
    """When the practitioner stops being bookable, by the listing as stored: `now` when they
    are not listed, the end of the listing's last day, or None when it has no end."""
    if practitioner.status is not ListingStatus.LISTED or practitioner.suspended_at is not None:
        return now
    if practitioner.listed_until is None:
        return None
    return listing_ends_at(practitioner.listed_until)


def profile_is_complete(practitioner: Practitioner) -> bool:
    if not (practitioner.specialties and practitioner.modes):
        return False
    if practitioner.offers_home:
        return bool(practitioner.base_postcode and practitioner.travel_radius_km)
    return True


def evaluate_listing(practitioner: Practitioner, today: date) -> ListingDecision:
    if practitioner.suspended_at is not None:
        reason = "suspended"
    elif not practitioner.user.is_active:
        reason = "account_inactive"
    elif not profile_is_complete(practitioner):
        reason = "profile_incomplete"
    else:
        credential = listing_credential(practitioner, today)
        if credential is not None:
            return ListingDecision(ListingStatus.LISTED, None, credential.expires_on)
        expired = any(
            qualifies(c, practitioner.profession) and c.status is CredentialStatus.VERIFIED
            for c in practitioner.credentials
        )
        reason = "credential_expired" if expired else "credential_missing"
    # Pending until first listed; from then on, not being listed is being delisted.
    never_listed = practitioner.first_listed_at is None and reason != "suspended"
    status = ListingStatus.PENDING if never_listed else ListingStatus.DELISTED
    return ListingDecision(status, reason, None)


def refresh_listing(
    session: Session, practitioner: Practitioner, today: date, *, actor_id: uuid.UUID | None
) -> ListingDecision:
    """Store the rule's answer; a change is audited, and a delisting is told to the practitioner."""
    decision = evaluate_listing(practitioner, today)
    before = practitioner.status
    practitioner.status = decision.status
    practitioner.status_reason = decision.reason
    practitioner.listed_until = decision.listed_until
    if decision.status is ListingStatus.LISTED and practitioner.first_listed_at is None:
        practitioner.first_listed_at = utcnow()
    reindex(practitioner)
    if decision.status is before:
        return decision
    record_audit(
        session,
        actor_id=actor_id,
        action=f"practitioner.{decision.status.value}",
        subject_type="practitioner",
        subject_id=practitioner.id,
        details={"from": before.value, "reason": decision.reason},
    )
    if decision.status is ListingStatus.DELISTED and decision.reason != "suspended":
        queue_notification(
            session,
            user_id=practitioner.user_id,
            template="practitioner_delisted",
            subject_type="practitioner",
            subject_id=practitioner.id,
            dedupe_key=f"practitioner:{practitioner.id}:delisted:{today.isoformat()}",
            context={"reason_text": REASON_TEXT[decision.reason or "credential_missing"]},
        )
    return decision


def listed_clause(today: date | ColumnElement[date]) -> ColumnElement[bool]:
    """SQL condition every reader (profile, slots, matching) uses to see only listed people.

    The stored status is the rule's answer at the last change; the clause re-checks the parts
    that can change without one (the clock, a suspension or deactivation made elsewhere)."""
    return and_(
        Practitioner.status == ListingStatus.LISTED,
        or_(Practitioner.listed_until.is_(None), Practitioner.listed_until >= today),
        Practitioner.suspended_at.is_(None),
        Practitioner.user.has(User.is_active.is_(True)),
    )


class NotListed(Forbidden):
    """A practitioner acted on something only a listed practitioner may do."""

    code = "not_listed"
    message = "Your profile is not listed yet."


def require_listed(
    session: Session, practitioner: Practitioner | None, today: date
) -> Practitioner:
    """The practitioner, if listed today; NotListed (403) otherwise, also for no profile yet."""
    if practitioner is None or not is_listed(session, practitioner.id, today):
        raise NotListed()
    return practitioner


def is_listed(session: Session, practitioner_id: uuid.UUID, today: date) -> bool:
    listed = select(Practitioner.id).where(Practitioner.id == practitioner_id, listed_clause(today))
    return session.scalar(listed) is not None


def get_listed_practitioner(
    session: Session, practitioner_id: uuid.UUID, today: date
) -> Practitioner:
    practitioner = session.scalar(
        select(Practitioner).where(Practitioner.id == practitioner_id, listed_clause(today))
    )
    if practitioner is None:
        raise NotFound("No listed practitioner with that id.")
    return practitioner
