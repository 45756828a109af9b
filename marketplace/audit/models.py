"""The append-only audit log (UPDATE and DELETE are refused by database triggers)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UUIDPrimaryKey, utcnow


class AuditEntry(UUIDPrimaryKey, Base):
    """Who did what to which record. Ids and the action only: never names or health data."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_subject", "subject_type", "subject_id", "at"),)

    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # The acting user's id, or None for the system (a scheduled task). Deliberately no foreign
    # key: rows never change, so they must outlive the erasure of the account that acted.
    actor_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
