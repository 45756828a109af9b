"""Carers: a patient invites a family member or carer by email; once they accept, the carer acts
for the patient (requests, bookings, courses, reviews) and gets the patient's messages, until
either of them ends it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, UUIDPrimaryKey, str_enum, utcnow


class CarerStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REVOKED = "revoked"


LIVE = (CarerStatus.INVITED, CarerStatus.ACTIVE)
_LIVE_SQL = "status IN ('invited', 'active')"


class CarerGrant(UUIDPrimaryKey, Base):
    """One invitation, and once accepted the carer's right to act for the patient. Only the
    SHA-256 of the invitation code is kept. Revoked grants stay, as the record of who could act
    for the patient when."""

    __tablename__ = "carer_grants"
    __table_args__ = (
        # One live invitation or grant per patient and address.
        Index("uq_carer_grants_live_email", "patient_id", "email", unique=True,
              sqlite_where=text(_LIVE_SQL), postgresql_where=text(_LIVE_SQL)),
        Index("ix_carer_grants_carer_status", "carer_id", "status"),
    )  # fmt: skip

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str | None] = mapped_column(String(254))  # cleared when either is erased
    carer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[CarerStatus] = mapped_column(
        str_enum(CarerStatus, "carer_status"), default=CarerStatus.INVITED
    )
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # of the invitation
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[uuid.UUID | None]  # the patient or the carer (no FK: erasure)

    def state_at(self, now: datetime) -> str:
        """The status, with an invitation past its time shown as expired."""
        if self.status is CarerStatus.INVITED and self.expires_at <= now:
            return "expired"
        return self.status.value
