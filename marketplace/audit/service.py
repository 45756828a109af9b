"""The audit log: written by every admin decision and sensitive read; never changed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.audit.models import AuditEntry
from marketplace.pagination import Page, paginate


def record_audit(
    session: Session,
    *,
    actor_id: uuid.UUID | None,
    action: str,
    subject_type: str,
    subject_id: uuid.UUID,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    entry = AuditEntry(
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        details=details or {},
    )
    session.add(entry)
    session.flush()
    return entry


def audit_entries(
    session: Session,
    *,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    action: str | None = None,
    limit: int,
    cursor: str | None,
) -> Page[AuditEntry]:
    """Newest first."""
    query = select(AuditEntry)
    if subject_type:
        query = query.where(AuditEntry.subject_type == subject_type)
    if subject_id:
        query = query.where(AuditEntry.subject_id == subject_id)
    if action:
        query = query.where(AuditEntry.action == action)
    return paginate(session, query, AuditEntry.at, AuditEntry.id, limit, cursor, descending=True)
