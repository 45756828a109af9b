"""The outbox: every message is first a row, written in the transaction that causes it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UUIDPrimaryKey, str_enum, utcnow


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DROPPED = "dropped"


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Notification(UUIDPrimaryKey, Base):
    """One message to one person. `pending` rows are sent once `due_at` has come (a retry moves
    it on); a dispatched or claimed row carries a lease, and a row whose lease ran out (its task
    or worker was lost) is dispatched again. `send_before` drops a message that would come too
    late to be of use (a reminder once the visit has started)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_status_due_at", "status", "due_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Where an email goes when not to the user's own address: a carer invitation is sent for the
    # patient (`user_id`) to someone who may have no account yet.
    address: Mapped[str | None] = mapped_column(String(254))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel, "notification_channel"))
    template: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID]
    # Unique, so the same message is never queued twice (e.g. one expiry warning per threshold).
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, "notification_status"), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    dropped_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_expires_at: Mapped[datetime | None]
    send_before: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
