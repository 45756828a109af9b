"""Sending: a send task's share of the outbox, claimed together, then each sent and marked.

`claim_for_sending` is the task's conditional update (pending -> sending): of two tasks holding
the same id, one sends. What the messages are about is loaded with the claim, in a few queries
for the whole share. A sent message is marked in its own commit right after the server took
it, so a worker killed between two messages resends neither. A transient failure (SMTP down)
puts the row back with exponential backoff; after the last attempt, or at once for a permanent
failure, it is `failed` and listed for admins to retry.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, update
from sqlalchemy.orm import Session

from marketplace.db import utcnow
from marketplace.messages.compose import Sources, compose
from marketplace.notifications.channels import Channels, PermanentFailure, describe_failure
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import ERROR_LENGTH, DeliveryPolicy

log = logging.getLogger(__name__)

# --- sending -----------------------------------------------------------------------------------


def claim_for_sending(
    session: Session, ids: Iterable[uuid.UUID], now: datetime, policy: DeliveryPolicy
) -> list[Notification]:
    """pending -> sending for those of `ids` that still need sending (one conditional update);
    the rows claimed."""
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
        .returning(Notification)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return list(claimed)


UnitOfWork = Callable[[], AbstractContextManager[Session]]
Changes = dict[str, Any]


def send_notifications(
    unit_of_work: UnitOfWork,
    ids: Iterable[uuid.UUID],
    channels: Channels,
    policy: DeliveryPolicy,
    clock: Callable[[], datetime] = utcnow,
) -> dict[str, int]:
    """Claim the given rows and load what they are about in one transaction, then send them,
    each outcome committed on its own right after; counts by outcome."""
    outcomes: Counter[str] = Counter()
    with unit_of_work() as session:
        claimed = claim_for_sending(session, ids, clock(), policy)
        sources = Sources.load(session, claimed)
        session.commit()
        for notification in claimed:
            outcome, changes = _deliver(notification, sources, channels, policy, clock())
            _record(session, notification.id, changes)
            session.commit()
            outcomes[outcome] += 1
    return dict(outcomes)


def _deliver(
    notification: Notification,
    sources: Sources,
    channels: Channels,
    policy: DeliveryPolicy,
    now: datetime,
) -> tuple[str, Changes]:
    if notification.send_before is not None and now >= notification.send_before:
        return "dropped", _dropped("Too late to be of use: the visit had started.")
    try:
        message = compose(notification, sources)
        if message is None:
            return "dropped", _dropped("What it was about no longer needs it.")
        channels.send(notification.channel, message)
    except PermanentFailure as exc:
        return "failed", _failed(describe_failure(exc))
    except Exception as exc:  # SMTP down, a timeout, a provider error: try again later
        log.warning(
            "notification %s: attempt %s failed: %s",
            notification.id,
            notification.attempts,
            describe_failure(exc),
        )
        return _retry_later(notification, exc, now, policy)
    return "sent", {"status": NotificationStatus.SENT, "sent_at": now, "lease_expires_at": None}


def _dropped(reason: str) -> Changes:
    return {
        "status": NotificationStatus.DROPPED,
        "dropped_reason": reason,
        "lease_expires_at": None,
    }


def _failed(error: str) -> Changes:
    return {
        "status": NotificationStatus.FAILED,
        "last_error": error[:ERROR_LENGTH],
        "lease_expires_at": None,
    }


def _retry_later(
    notification: Notification, exc: Exception, now: datetime, policy: DeliveryPolicy
) -> tuple[str, Changes]:
    error = describe_failure(exc)
    if notification.attempts >= policy.max_attempts:
        return "failed", _failed(error)
    return "retrying", {
        "status": NotificationStatus.PENDING,
        "last_error": error[:ERROR_LENGTH],
        "due_at": now + policy.backoff(notification.attempts),
        "lease_expires_at": None,
    }


def _record(session: Session, notification_id: uuid.UUID, changes: Changes) -> None:
    # A Core statement on the table: this runs once per message sent, and the ORM's bulk
    # update machinery would be half its cost.
    table = cast(Table, Notification.__table__)
    session.connection().execute(
        update(table)
        .where(table.c.id == notification_id, table.c.status == NotificationStatus.SENDING)
        .values(**changes)
    )


def pending_ids(ids: Iterable[str]) -> Iterator[uuid.UUID]:
    """Task arguments back to ids, skipping anything that is not one."""
    for value in ids:
        try:
            yield uuid.UUID(value)
        except (ValueError, TypeError):
            log.warning("send task got a malformed id; skipped")
