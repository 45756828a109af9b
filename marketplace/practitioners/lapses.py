"""The daily check: delist practitioners whose required credential expired, and warn them
30 and 7 days before it does (one warning per threshold, never repeated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.notifications.service import queue_notification
from marketplace.practitioners.listing import listing_credential, refresh_listing
from marketplace.practitioners.models import CREDENTIAL_LABELS, ListingStatus, Practitioner

WARNING_DAYS = (7, 30)  # most urgent first


@dataclass(frozen=True)
class LapseReport:
    delisted: int
    warned: int


def warning_threshold(days_left: int) -> int | None:
    """The threshold a credential with `days_left` falls under: 7, 30, or none yet."""
    return next((days for days in WARNING_DAYS if days_left <= days), None)


def _warn_if_expiring(session: Session, practitioner: Practitioner, today: date) -> bool:
    credential = listing_credential(practitioner, today)
    if credential is None or credential.expires_on is None:
        return False
    days_left = (credential.expires_on - today).days
    threshold = warning_threshold(days_left)
    if threshold is None:
        return False
    queued = queue_notification(
        session,
        user_id=practitioner.user_id,
        template="credential_expiring",
        subject_type="credential",
        subject_id=credential.id,
        dedupe_key=f"credential:{credential.id}:expiry-warning:{threshold}",
        context={
            "credential_label": CREDENTIAL_LABELS[credential.kind],
            "number": credential.number,
            "expires_on": credential.expires_on.isoformat(),
            "days_left": days_left,
        },
    )
    return queued is not None


def check_credential_lapses(session: Session, today: date) -> LapseReport:
    """Idempotent: running it twice on one day changes nothing the second time."""
    lapsed = session.scalars(
        select(Practitioner).where(
            Practitioner.status == ListingStatus.LISTED, Practitioner.listed_until < today
        )
    ).all()
    for practitioner in lapsed:
        refresh_listing(session, practitioner, today, actor_id=None)
    expiring = session.scalars(
        select(Practitioner).where(
            Practitioner.status == ListingStatus.LISTED,
            Practitioner.listed_until <= today + timedelta(days=max(WARNING_DAYS)),
        )
    ).all()
    warned = sum(_warn_if_expiring(session, practitioner, today) for practitioner in expiring)
    return LapseReport(delisted=len(lapsed), warned=warned)
