"""The beat schedule. Exactly one beat process runs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.schedules import crontab


def beat_schedule(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        # Due reminders into the outbox, and due outbox rows to send tasks.
        "dispatch-notifications": {
            "task": "worker.tasks.dispatch_notifications",
            "schedule": float(config["NOTIFICATION_DISPATCH_SECONDS"]),
        },
        "purge-dead-access-tokens": {
            "task": "worker.tasks.purge_dead_access_tokens",
            "schedule": 3600.0,
        },
        "expire-care-requests": {
            "task": "worker.tasks.expire_care_requests",
            "schedule": 15 * 60.0,
        },
        # Early morning UK time, before anyone books: delist lapsed credentials, warn of expiries.
        "check-credential-lapses": {
            "task": "worker.tasks.check_credential_lapses",
            "schedule": crontab(hour=5, minute=30),
        },
    }
