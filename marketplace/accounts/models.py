"""Accounts tables: users, the access tokens (login sessions and API tokens) that name them, and
the grants by which a carer acts for a patient."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.db import Base, Timestamps, UUIDPrimaryKey, str_enum, utcnow


class Role(enum.StrEnum):
    PATIENT = "patient"
    PRACTITIONER = "practitioner"
    ADMIN = "admin"


class TokenKind(enum.StrEnum):
    SESSION = "session"  # a browser login, carried in the signed session cookie
    API = "api"  # a bearer token made with POST /auth/tokens


class User(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("email = lower(email)", name="email_lowercase"),)

    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    erased_at: Mapped[datetime | None]  # personal data erased at the user's request (UK GDPR)

    tokens: Mapped[list[AccessToken]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    # Flask-Login's user protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class AccessToken(UUIDPrimaryKey, Base):
    """A secret that authenticates a user; only its SHA-256 is stored."""

    __tablename__ = "access_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[TokenKind] = mapped_column(str_enum(TokenKind, "token_kind"))
    name: Mapped[str | None] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class CarerStatus(enum.StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REVOKED = "revoked"


LIVE = (CarerStatus.INVITED, CarerStatus.ACTIVE)
_LIVE_SQL = "status IN ('invited', 'active')"


class CarerGrant(UUIDPrimaryKey, Base):
    """One invitation, and once accepted the carer's right to act for the patient (the flows are
    in `caregivers`). Only the SHA-256 of the invitation code is kept. Revoked grants stay, as
    the record of who could act for the patient when."""

    __tablename__ = "carer_grants"
    __table_args__ = (
        # One live invitation or grant per patient and address.
        Index(
            "uq_carer_grants_live_email",
            "patient_id",
            "email",
            unique=True,
            sqlite_where=text(_LIVE_SQL),
            postgresql_where=text(_LIVE_SQL),
        ),
        Index("ix_carer_grants_carer_status", "carer_id", "status"),
    )

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
