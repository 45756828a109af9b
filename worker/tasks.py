"""Thin tasks: they take ids or nothing, open one unit of work and call a service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from flask import current_app

from marketplace.accounts import service as accounts
from marketplace.booking import care_requests
from marketplace.booking.bookings import cancel_visits_of_lapsed
from marketplace.booking.reminders import ReminderReport, queue_due_reminders
from marketplace.clock import business_today
from marketplace.db import get_database, utcnow
from marketplace.messages import delivery
from marketplace.notifications import service as notifications
from marketplace.notifications.channels import Channels
from marketplace.notifications.service import DeliveryPolicy
from marketplace.practitioners.lapses import check_credential_lapses as check_lapses

DEAD_TOKEN_RETENTION = timedelta(days=30)
REMINDERS_PER_BATCH = 500


@shared_task(ignore_result=False)
def ping() -> str:
    """Answers 'pong': proves a worker is consuming from the broker."""
    return "pong"


@shared_task
def purge_dead_access_tokens() -> int:
    """Delete login sessions and API tokens that ended over 30 days ago (idempotent)."""
    with get_database().session_scope() as session:
        return accounts.purge_dead_tokens(session, older_than=DEAD_TOKEN_RETENTION)


@shared_task
def dispatch_notifications() -> dict[str, int]:
    """Every minute: due reminders into the outbox, then due outbox rows to send tasks."""
    config = current_app.config
    database = get_database()
    reminders = ReminderReport()
    while True:
        with database.session_scope() as session:
            report = queue_due_reminders(
                session, utcnow(), limit=REMINDERS_PER_BATCH, sms=config["REMINDER_SMS"]
            )
        reminders.queued += report.queued
        reminders.dropped += report.dropped
        if report.handled < REMINDERS_PER_BATCH:
            break
    policy = DeliveryPolicy.from_config(config)
    dispatched = 0
    while True:
        with database.session_scope() as session:
            ids = notifications.dispatch_due(session, utcnow(), policy)
        notifications.send_tasks_for(ids)
        dispatched += len(ids)
        if len(ids) < policy.dispatch_limit:
            break
    return {
        "reminders_queued": reminders.queued,
        "reminders_dropped": reminders.dropped,
        "dispatched": dispatched,
    }


@shared_task(acks_late=True)
def send_notifications(notification_ids: list[str]) -> dict[str, int]:
    """Send the given outbox rows that still need sending; a repeat of the task sends nothing
    more (each row is claimed with a conditional update)."""
    with Channels(current_app.config, current_app.instance_path) as channels:
        return delivery.send_notifications(
            get_database().session_scope,
            delivery.pending_ids(notification_ids),
            channels,
            DeliveryPolicy.from_config(current_app.config),
        )


@shared_task
def check_credential_lapses() -> dict[str, int]:
    """Daily: delist practitioners whose required credential expired (cancelling their visits
    that have not started); warn at 30 and 7 days."""
    now = utcnow()
    with get_database().session_scope() as session:
        report = check_lapses(session, business_today(now))
        cancelled = cancel_visits_of_lapsed(session, now=now)
    return {
        "delisted": report.delisted,
        "warned": report.warned,
        "visits_cancelled": len(cancelled),
    }


@shared_task
def expire_care_requests() -> int:
    """Open care requests whose window has passed become expired (idempotent)."""
    with get_database().session_scope() as session:
        return care_requests.expire_requests(session, utcnow())
