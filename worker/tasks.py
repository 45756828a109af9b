"""Thin tasks: they take ids or nothing, open one unit of work and call a service."""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task

from marketplace.accounts import service as accounts
from marketplace.db import get_database

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
