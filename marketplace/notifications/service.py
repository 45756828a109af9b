"""Queue messages in the outbox and deliver them.

`queue_notification` writes the row in the caller's transaction and sends the delivery task only
after that transaction commits. `deliver_notification` is what the task runs: it claims the row
with a conditional update, so a message is delivered at most once however often the task runs.
"""

from __future__ import annotations

import uuid
from typing import Any

from celery import current_app as current_celery
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketplace.accounts.models import User
from marketplace.db import after_commit, utcnow
from marketplace.notifications.channels import send_email
from marketplace.notifications.messages import render_message
from marketplace.notifications.models import Channel, Notification, NotificationStatus

DELIVER_TASK = "worker.tasks.deliver_notification"


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
) -> Notification | None:
    """Queue one message; None if a message with this dedupe key was already queued."""
    if session.scalar(select(Notification.id).where(Notification.dedupe_key == dedupe_key)):
        return None
    notification = Notification(
        user_id=user_id,
        channel=channel,
        template=template,
        subject_type=subject_type,
        subject_id=subject_id,
        dedupe_key=dedupe_key,
        context=context or {},
    )
    try:
        with session.begin_nested():
            session.add(notification)
    except IntegrityError:  # queued concurrently by another transaction
        return None
    notification_id = str(notification.id)
    after_commit(session, lambda: current_celery.send_task(DELIVER_TASK, args=[notification_id]))
    return notification


def _claim(session: Session, notification_id: uuid.UUID) -> bool:
    claimed = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == NotificationStatus.PENDING,
        )
        .values(status=NotificationStatus.SENDING, attempts=Notification.attempts + 1)
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


def deliver_notification(session: Session, notification_id: uuid.UUID) -> bool:
    """Send a pending message once; False when it is not (or no longer) pending."""
    if not _claim(session, notification_id):
        return False
    notification = session.get_one(Notification, notification_id)
    session.refresh(notification)
    recipient = session.get_one(User, notification.user_id)
    subject, body = render_message(notification.template, recipient, notification.context)
    send_email(to=recipient.email, subject=subject, body=body, message_id=str(notification.id))
    notification.status = NotificationStatus.SENT
    notification.sent_at = utcnow()
    return True
