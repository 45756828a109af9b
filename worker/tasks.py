"""Thin tasks: they take ids or nothing, open one unit of work and call a service."""

from __future__ import annotations

import uuid
from datetime import timedelta

from celery import shared_task

from marketplace.accounts import service as accounts
from marketplace.booking import service as care_requests
from marketplace.clock import business_today
from marketplace.db import get_database, utcnow
from marketplace.notifications import service as notifications
from marketplace.practitioners.lapses import check_credential_lapses as check_lapses

DEAD_TOKEN_RETENTION = timedelta(days=30)


@shared_task(ignore_result=False)
def ping() -> str:
    """Answers 'pong': proves a worker is consuming from the broker."""
    return "pong"


@shared_task
def purge_dead_access_tokens() -> int:
    """Delete login sessions and API tokens that ended over 30 days ago (idempotent)."""
    with get_database().session_scope() as session:
        return accounts.purge_dead_tokens(session, older_than=DEAD_TOKEN_RETENTION)


@shared_task(acks_late=True)
def deliver_notification(notification_id: str) -> bool:
    """Send one queued message; a repeat delivery of the task sends nothing more."""
    with get_database().session_scope() as session:
        return notifications.deliver_notification(session, uuid.UUID(notification_id))


@shared_task
def check_credential_lapses() -> dict[str, int]:
    """Daily: delist practitioners whose required credential expired; warn at 30 and 7 days."""
    with get_database().session_scope() as session:
        report = check_lapses(session, business_today())
    return {"delisted": report.delisted, "warned": report.warned}


@shared_task
def expire_care_requests() -> int:
    """Open care requests whose window has passed become expired (idempotent)."""
    with get_database().session_scope() as session:
        return care_requests.expire_requests(session, utcnow())
