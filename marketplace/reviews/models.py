"""Verified reviews: one per completed visit, by its patient; the practitioner may reply once;
admins may hide one (with a reason, audited)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UUIDPrimaryKey, utcnow

RATING_RANGE = (1, 5)
TEXT_LENGTH = 1000


class Review(UUIDPrimaryKey, Base):
    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint(
            f"rating BETWEEN {RATING_RANGE[0]} AND {RATING_RANGE[1]}", name="rating_range"
        ),
        Index("ix_reviews_practitioner_created", "practitioner_id", "created_at"),
    )

    # Unique: one review per visit.
    booking_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), unique=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE")
    )
    author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    rating: Mapped[int]
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    reply: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[datetime | None]
    hidden_at: Mapped[datetime | None]
    hidden_reason: Mapped[str | None] = mapped_column(Text)
