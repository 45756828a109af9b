"""The outbox: queue messages with the change that causes them, dispatch due ones, send each once.

- `queue_notification(s)` writes the rows in the caller's transaction. Once that transaction
  commits, send tasks carry the ids it queued (design decision 4). A row handed to the broker
  is `pending` with a short handover lease (`NOTIFICATION_HANDOVER_SECONDS`, a minute): the
  dispatcher leaves it alone meanwhile. A sender that claims it (`sending`) holds the longer
  send lease (`NOTIFICATION_LEASE_SECONDS`) instead, so a message in flight is never handed out
  again while it may still be sent.
- `dispatch_due` (the beat, every minute) leases due rows in batches with one statement
  (`FOR UPDATE SKIP LOCKED` inside it on PostgreSQL) and returns their ids for send tasks: rows
  whose task was not claimed within the handover lease (never published, or lost with the
  broker's queue), retries whose backoff is over, and rows whose sender died mid-send (their
  send lease ran out). A task that arrives after all claims nothing: the claim is conditional.
- Sending itself is in `delivery`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app as current_celery
from sqlalchemy import and_, event, or_, select, update
from sqlalchemy.orm import Session

from marketplace.db import after_commit, insert_on_conflict, utcnow
from marketplace.errors import Conflict, NotFound
from marketplace.notifications.models import Channel, Notification, NotificationStatus
from marketplace.pagination import Page, paginate

log = logging.getLogger(__name__)

SEND_TASK = "worker.tasks.send_notifications"
ERROR_LENGTH = 500
IDS_PER_TASK = 50


@dataclass(frozen=True)
class DeliveryPolicy:
    max_attempts: int = 5
    retry_after: timedelta = timedelta(minutes=1)  # doubled after each failed attempt
    longest_retry: timedelta = timedelta(hours=6)
    lease: timedelta = timedelta(minutes=5)  # longer than one message can take to send
    # How long a row handed to the broker waits for a sender to claim it before it is handed out
    # again: a broker that lost its queue delays messages this long, not a whole send lease.
    handover: timedelta = timedelta(minutes=1)
    dispatch_limit: int = 1000  # rows leased per statement

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliveryPolicy:
        return cls(
            max_attempts=config["NOTIFICATION_MAX_ATTEMPTS"],
            retry_after=timedelta(seconds=config["NOTIFICATION_RETRY_SECONDS"]),
            lease=timedelta(seconds=config["NOTIFICATION_LEASE_SECONDS"]),
            handover=timedelta(seconds=config["NOTIFICATION_HANDOVER_SECONDS"]),
        )

    def backoff(self, attempts: int) -> timedelta:
        backoff: timedelta = self.retry_after * 2 ** max(attempts - 1, 0)
        return min(self.longest_retry, backoff)


def handover_lease(session: Session) -> timedelta:
    """How long the after-commit send task has to claim a new row before the dispatcher sends
    another task for it (the first may have been lost with the broker): the application's
    setting, read from the session's `info` (see `db.Database`)."""
    seconds = session.info.get("settings", {}).get("NOTIFICATION_HANDOVER_SECONDS")
    return DeliveryPolicy.handover if seconds is None else timedelta(seconds=seconds)


# --- queueing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """One person told about a booking, and the part of the dedupe key that names them."""

    user_id: uuid.UUID
    role: str  # "patient", "practitioner" or "carer"
    key: str

    @property
    def patient_side(self) -> bool:
        return self.role != "practitioner"


def booking_recipients(
    patient_id: uuid.UUID, practitioner_user_id: uuid.UUID, carer_ids: Sequence[uuid.UUID]
) -> list[Recipient]:
    """Who hears about a booking: both parties and the patient's carers."""
    return [
        Recipient(patient_id, "patient", "patient"),
        Recipient(practitioner_user_id, "practitioner", "practitioner"),
        *(Recipient(carer_id, "carer", f"carer:{carer_id}") for carer_id in carer_ids),
    ]


@dataclass(frozen=True)
class OutboxEntry:
    """One message to queue: who gets it, which template, what it is about."""

    user_id: uuid.UUID
    template: str
    subject_type: str
    subject_id: uuid.UUID
    dedupe_key: str
    context: dict[str, Any] = field(default_factory=dict)
    channel: Channel = Channel.EMAIL
    send_before: datetime | None = None
    address: str | None = None


def queue_notification(
    session: Session,
    *,
    user_id: uuid.UUID,
    template: str,
    subject_type: str,
    subject_id: uuid.UUID,
    dedupe_key: str,
    context: dict[str, Any] | None = None,
    channel: Channel = Channel.EMAIL,
    send_before: datetime | None = None,
    address: str | None = None,
) -> uuid.UUID | None:
    """Queue one message; its id, or None if a message with this dedupe key exists already."""
    entry = OutboxEntry(
        user_id,
        template,
        subject_type,
        subject_id,
        dedupe_key,
        context or {},
        channel,
        send_before,
        address,
    )
    queued = queue_notifications(session, [entry])
    return queued[0] if queued else None


def queue_notifications(session: Session, entries: Sequence[OutboxEntry]) -> list[uuid.UUID]:
    """Queue messages in one statement (batched by SQLAlchemy); the ids of those queued, without
    the ones whose dedupe key was taken already."""
    if not entries:
        return []
    now = utcnow()
    lease_expires_at = now + handover_lease(session)
    rows = [
        asdict(entry)
        | {
            "id": uuid.uuid4(),
            "status": NotificationStatus.PENDING,
            "attempts": 0,
            "created_at": now,
            "due_at": now,
            "lease_expires_at": lease_expires_at,
        }
        for entry in entries
    ]
    statement = (
        insert_on_conflict(session, Notification)
        .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
        .returning(Notification.id)
    )
    queued = list(session.scalars(statement, rows))
    if queued:
        _send_after_commit(session, queued)
    return queued


def _send_after_commit(session: Session, ids: list[uuid.UUID]) -> None:
    """Once the transaction commits (and unless the SAVEPOINT around the rows rolls back), the
    ids join the others of that commit, all handed to send tasks by `_send_committed`."""
    after_commit(
        session, lambda: session.info.setdefault("notifications_committed", []).extend(ids)
    )


@event.listens_for(Session, "after_commit")
def _send_committed(session: Session) -> None:
    """Runs after `db`'s after-commit callbacks (registered later), so it sees every id."""
    ids = session.info.pop("notifications_committed", [])
    if not ids:
        return
    try:
        send_tasks_for(ids)
    except Exception:  # the broker is down: the dispatcher sends them once the handover is over
        log.exception("could not hand %d notifications to the worker", len(ids))


def drop_pending(
    session: Session,
    subject_type: str,
    subject_id: uuid.UUID,
    templates: Sequence[str],
    reason: str,
) -> None:
    """Messages of these templates about the subject that are still waiting are not sent after
    all (one being sent now is not stopped)."""
    session.execute(
        update(Notification)
        .where(
            Notification.subject_type == subject_type,
            Notification.subject_id == subject_id,
            Notification.template.in_(templates),
            Notification.status == NotificationStatus.PENDING,
        )
        .values(status=NotificationStatus.DROPPED, dropped_reason=reason, lease_expires_at=None)
        .execution_options(synchronize_session=False)
    )


# --- dispatching -------------------------------------------------------------------------------


def dispatch_due(session: Session, now: datetime, policy: DeliveryPolicy) -> list[uuid.UUID]:
    """Lease up to `dispatch_limit` rows that need a send task now; their ids."""
    _fail_rows_lost_too_often(session, now, policy)
    due = or_(
        and_(
            Notification.status == NotificationStatus.PENDING,
            Notification.due_at <= now,
            or_(Notification.lease_expires_at.is_(None), Notification.lease_expires_at <= now),
        ),
        and_(
            Notification.status == NotificationStatus.SENDING,
            Notification.lease_expires_at <= now,
        ),
    )
    batch = (
        select(Notification.id)
        .where(due)
        .order_by(Notification.due_at)
        .limit(policy.dispatch_limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite writes one at a time anyway
    )
    leased = session.scalars(
        update(Notification)
        .where(Notification.id.in_(batch.scalar_subquery()))
        .values(status=NotificationStatus.PENDING, lease_expires_at=now + policy.handover)
        .returning(Notification.id)
        .execution_options(synchronize_session=False)
    )
    return list(leased)


def _fail_rows_lost_too_often(session: Session, now: datetime, policy: DeliveryPolicy) -> None:
    """A row whose sender died on every attempt is not tried forever."""
    session.execute(
        update(Notification)
        .where(
            Notification.status == NotificationStatus.SENDING,
            Notification.lease_expires_at <= now,
            Notification.attempts >= policy.max_attempts,
        )
        .values(
            status=NotificationStatus.FAILED,
            lease_expires_at=None,
            last_error="The worker sending it stopped on every attempt.",
        )
        .execution_options(synchronize_session=False)
    )


def send_tasks_for(ids: list[uuid.UUID]) -> None:
    """Hand rows to send tasks, a few dozen ids each."""
    for start in range(0, len(ids), IDS_PER_TASK):
        chunk = [str(notification_id) for notification_id in ids[start : start + IDS_PER_TASK]]
        current_celery.send_task(SEND_TASK, args=[chunk])


# --- admins ------------------------------------------------------------------------------------


def notifications_with_status(
    session: Session, status: NotificationStatus | None, limit: int, cursor: str | None
) -> Page[Notification]:
    query = select(Notification)
    if status is not None:
        query = query.where(Notification.status == status)
    return paginate(session, query, Notification.created_at, Notification.id, limit, cursor)


def retry_notification(session: Session, notification_id: uuid.UUID) -> Notification:
    """A failed message gets a fresh set of attempts, sent after commit."""
    notification = session.get(Notification, notification_id, with_for_update=True)
    if notification is None:
        raise NotFound("No such notification.")
    if notification.status is not NotificationStatus.FAILED:
        raise Conflict("Only a failed notification can be retried.", code="not_failed")
    now = utcnow()
    notification.status = NotificationStatus.PENDING
    notification.attempts = 0
    notification.due_at = now
    notification.lease_expires_at = now + handover_lease(session)
    session.flush()
    _send_after_commit(session, [notification.id])
    return notification
