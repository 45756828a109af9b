"""Sending: a send task's share of the outbox, each message claimed, sent and marked on its own.

`claim_for_sending` is the task's conditional update (pending -> sending): of two tasks holding
the same id, one sends. A sent message is marked in its own commit right after the server took
it, so a worker killed between two messages resends neither. A transient failure (SMTP down)
puts the row back with exponential backoff; after the last attempt, or at once for a permanent
failure, it is `failed` and listed for admins to retry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from marketplace.db import utcnow
from marketplace.notifications.channels import Channels, PermanentFailure
from marketplace.notifications.messages import compose
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import ERROR_LENGTH, DeliveryPolicy

log = logging.getLogger(__name__)

# --- sending -----------------------------------------------------------------------------------


def claim_for_sending(
    session: Session, ids: Iterable[uuid.UUID], now: datetime, policy: DeliveryPolicy
) -> list[uuid.UUID]:
    """pending -> sending for those of `ids` that still need sending (one conditional update)."""
    claimed = session.scalars(
        update(Notification)
        .where(
            Notification.id.in_(list(ids)),
            Notification.status == NotificationStatus.PENDING,
            Notification.due_at <= now,
        )
        .values(
            status=NotificationStatus.SENDING,
            attempts=Notification.attempts + 1,
            lease_expires_at=now + policy.lease,
        )
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(claimed)


UnitOfWork = Callable[[], AbstractContextManager[Session]]


def send_notifications(
    unit_of_work: UnitOfWork,
    ids: Iterable[uuid.UUID],
    channels: Channels,
    policy: DeliveryPolicy,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, int]:
    """Claim and send the given rows, each outcome committed on its own; counts by outcome."""
    with unit_of_work() as session:
        claimed = claim_for_sending(session, ids, clock(), policy)
    outcomes: dict[str, int] = {}
    for notification_id in claimed:
        with unit_of_work() as session:
            outcome = _send_one(session, notification_id, channels, policy, clock())
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def _send_one(
    session: Session,
    notification_id: uuid.UUID,
    channels: Channels,
    policy: DeliveryPolicy,
    now: datetime,
) -> str:
    notification = session.get_one(Notification, notification_id, populate_existing=True)
    if notification.status is not NotificationStatus.SENDING:
        return "skipped"
    if notification.send_before is not None and now >= notification.send_before:
        _drop(notification, "Too late to be of use: the visit had started.")
        return "dropped"
    try:
        message = compose(session, notification)
        if message is None:
            _drop(notification, "What it was about no longer needs it.")
            return "dropped"
        channels.send(notification.channel, message)
    except PermanentFailure as exc:
        _give_up(notification, str(exc))
        return "failed"
    except Exception as exc:  # SMTP down, a timeout, a provider error: try again later
        log.warning("notification %s: attempt %s failed: %r", notification.id,
                    notification.attempts, exc)  # fmt: skip
        return _retry_later(notification, exc, now, policy)
    notification.status = NotificationStatus.SENT
    notification.sent_at = now
    notification.lease_expires_at = None
    return "sent"


def _drop(notification: Notification, reason: str) -> None:
    notification.status = NotificationStatus.DROPPED
    notification.dropped_reason = reason
    notification.lease_expires_at = None


def _give_up(notification: Notification, error: str) -> None:
    notification.status = NotificationStatus.FAILED
    notification.last_error = error[:ERROR_LENGTH]
    notification.lease_expires_at = None


def _retry_later(
    notification: Notification, exc: Exception, now: datetime, policy: DeliveryPolicy
) -> str:
    error = f"{type(exc).__name__}: {exc}"
    if notification.attempts >= policy.max_attempts:
        _give_up(notification, error)
        return "failed"
    notification.status = NotificationStatus.PENDING
    notification.last_error = error[:ERROR_LENGTH]
    notification.due_at = now + policy.backoff(notification.attempts)
    notification.lease_expires_at = None
    return "retrying"


def pending_ids(ids: Iterable[str]) -> Iterator[uuid.UUID]:
    """Task arguments back to ids, skipping anything that is not one."""
    for value in ids:
        try:
            yield uuid.UUID(value)
        except (ValueError, TypeError):
            log.warning("send task got a malformed id; skipped")
