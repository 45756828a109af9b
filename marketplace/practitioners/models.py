"""Practitioner tables: profiles, specialties, credentials with evidence, availability."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import User
from marketplace.db import Base, Timestamps, UUIDPrimaryKey, str_enum, utcnow

MAX_BUFFER_MINUTES = 120  # between any two visits
MAX_TRAVEL_BUFFER_MINUTES = 180  # added between two home visits


class Profession(enum.StrEnum):
    PHYSIOTHERAPIST = "physiotherapist"
    NEUROMUSCULAR_THERAPIST = "neuromuscular_therapist"


class Mode(enum.StrEnum):
    HOME = "home"
    VIDEO = "video"


class VisitType(enum.StrEnum):
    ASSESSMENT = "assessment"  # a patient's first visit with a practitioner
    FOLLOW_UP = "follow_up"


DEFAULT_ASSESSMENT_MINUTES = 75


class ListingStatus(enum.StrEnum):
    PENDING = "pending"  # never listed yet: the required credential is not verified
    LISTED = "listed"
    DELISTED = "delisted"  # was listed; lapsed, rejected on re-check, suspended or deactivated


class CredentialKind(enum.StrEnum):
    HCPC = "hcpc"
    NMT_CERTIFICATE = "nmt_certificate"


CREDENTIAL_LABELS = {
    CredentialKind.HCPC: "HCPC registration",
    CredentialKind.NMT_CERTIFICATE: "NMT certificate",
}


class CredentialStatus(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # a newer verification of the same kind replaced it


class Practitioner(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "practitioners"
    __table_args__ = (
        CheckConstraint("travel_radius_km BETWEEN 1 AND 80", name="travel_radius_range"),
        CheckConstraint(
            "session_minutes BETWEEN 30 AND 120 AND session_minutes % 15 = 0",
            name="session_minutes_range",
        ),
        CheckConstraint("price_pence > 0", name="price_positive"),
        CheckConstraint(
            "assessment_minutes BETWEEN 30 AND 180 AND assessment_minutes % 15 = 0",
            name="assessment_minutes_range",
        ),
        CheckConstraint("assessment_price_pence > 0", name="assessment_price_positive"),
        CheckConstraint("offers_home OR offers_video", name="offers_a_mode"),
        Index("ix_practitioners_status_listed_until", "status", "listed_until"),
        # Matching narrows candidates with a bounding box on these before exact distances.
        Index("ix_practitioners_location", "latitude", "longitude"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    profession: Mapped[Profession] = mapped_column(str_enum(Profession, "profession", 30))
    bio: Mapped[str] = mapped_column(Text, default="")
    offers_home: Mapped[bool]
    offers_video: Mapped[bool]
    base_postcode: Mapped[str | None] = mapped_column(String(8))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    travel_radius_km: Mapped[int | None]
    session_minutes: Mapped[int]  # a follow-up session
    price_pence: Mapped[int]  # of a follow-up session
    # The first visit with a new patient is an assessment: longer, with its own price.
    assessment_minutes: Mapped[int] = mapped_column(default=DEFAULT_ASSESSMENT_MINUTES)
    assessment_price_pence: Mapped[int]
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)

    timezone: Mapped[str] = mapped_column(String(64), default="Europe/London")
    min_notice_hours: Mapped[int] = mapped_column(default=12)
    horizon_days: Mapped[int] = mapped_column(default=60)
    buffer_minutes: Mapped[int] = mapped_column(default=15)
    travel_buffer_minutes: Mapped[int] = mapped_column(default=30)

    status: Mapped[ListingStatus] = mapped_column(
        str_enum(ListingStatus, "listing_status"), default=ListingStatus.PENDING
    )
    status_reason: Mapped[str | None] = mapped_column(String(40))
    listed_until: Mapped[date | None]  # the required credential's expiry while listed
    first_listed_at: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]
    suspension_reason: Mapped[str | None] = mapped_column(Text)

    user: Mapped[User] = relationship()
    specialties: Mapped[list[PractitionerSpecialty]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="PractitionerSpecialty.slug"
    )
    credentials: Mapped[list[Credential]] = relationship(
        back_populates="practitioner",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Credential.submitted_at",
    )
    weekly_rules: Mapped[list[WeeklyRule]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(WeeklyRule.weekday, WeeklyRule.start_time)",
    )
    exceptions: Mapped[list[AvailabilityException]] = relationship(
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="(AvailabilityException.on_date, AvailabilityException.start_time)",
    )
    match_entries: Mapped[list[MatchEntry]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )

    def visit_length(self, visit_type: VisitType) -> timedelta:
        return visit_length(visit_type, self.session_minutes, self.assessment_minutes)

    @property
    def modes(self) -> list[Mode]:
        return offered_modes(self.offers_home, self.offers_video)

    @property
    def specialty_slugs(self) -> list[str]:
        return [specialty.slug for specialty in self.specialties]


def visit_length(visit_type: VisitType, session_minutes: int, assessment_minutes: int) -> timedelta:
    assessment = visit_type is VisitType.ASSESSMENT
    return timedelta(minutes=assessment_minutes if assessment else session_minutes)


def offered_modes(offers_home: bool, offers_video: bool) -> list[Mode]:
    return [mode for mode, on in ((Mode.HOME, offers_home), (Mode.VIDEO, offers_video)) if on]


class PractitionerSpecialty(Base):
    __tablename__ = "practitioner_specialties"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    slug: Mapped[str] = mapped_column(String(40), primary_key=True, index=True)


class Credential(UUIDPrimaryKey, Base):
    __tablename__ = "credentials"
    __table_args__ = (
        # One verified holder per registration number, across all practitioners.
        Index(
            "uq_credentials_verified_number",
            "kind",
            "number",
            unique=True,
            sqlite_where=text("status = 'verified'"),
            postgresql_where=text("status = 'verified'"),
        ),
        Index("ix_credentials_status_submitted_at", "status", "submitted_at"),
        CheckConstraint("training_hours IS NULL OR training_hours >= 0", name="hours_positive"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[CredentialKind] = mapped_column(str_enum(CredentialKind, "credential_kind"))
    number: Mapped[str] = mapped_column(String(40))
    issuer: Mapped[str | None] = mapped_column(String(200))
    programme: Mapped[str | None] = mapped_column(String(200))
    training_hours: Mapped[int | None]
    issued_on: Mapped[date | None]
    expires_on: Mapped[date | None]
    status: Mapped[CredentialStatus] = mapped_column(
        str_enum(CredentialStatus, "credential_status"), default=CredentialStatus.PENDING
    )
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    decision_reason: Mapped[str | None] = mapped_column(Text)
    register_check: Mapped[str | None] = mapped_column(Text)

    practitioner: Mapped[Practitioner] = relationship(back_populates="credentials")
    evidence: Mapped[list[Evidence]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="Evidence.uploaded_at"
    )


class Evidence(UUIDPrimaryKey, Base):
    """An uploaded file, stored outside any served folder under a random name."""

    __tablename__ = "credential_evidence"

    credential_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("credentials.id", ondelete="CASCADE"), index=True
    )
    stored_name: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)


class WeeklyRule(UUIDPrimaryKey, Base):
    """A weekly opening, in the practitioner's local time: e.g. Monday 09:00-17:00, home+video."""

    __tablename__ = "availability_rules"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("end_time > start_time", name="ends_after_start"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int]
    start_time: Mapped[time]
    end_time: Mapped[time]
    modes: Mapped[list[str]] = mapped_column(JSON)


class AvailabilityException(UUIDPrimaryKey, Base):
    """A date that differs from the weekly rules: a day off, or other hours that day."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        CheckConstraint(
            "(available AND start_time IS NOT NULL AND end_time > start_time)"
            " OR (NOT available AND start_time IS NULL AND end_time IS NULL)",
            name="hours_when_available",
        ),
        UniqueConstraint(
            "practitioner_id", "on_date", "start_time", name="uq_availability_exceptions_start"
        ),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    on_date: Mapped[date]
    available: Mapped[bool]
    start_time: Mapped[time | None]
    end_time: Mapped[time | None]
    modes: Mapped[list[str]] = mapped_column(JSON, default=list)


class MatchEntry(Base):
    """A search-index row: a listed practitioner can be matched on this specialty in this mode.

    Kept by `match_index.reindex` whenever the listing, profile or availability changes; matching
    narrows candidates here and then checks the truth (the listing rule, the diary) for the few
    it evaluates. An entry exists while a weekly rule holds a visit of either type or a dated
    opening offers the mode. `monday_last_start` ... `sunday_last_start` are the latest an
    assessment (a patient's first visit with them) can start that day by the weekly rules
    offering the mode (None: no rule that day holds one; `time.max` every day when the
    practitioner keeps another time zone and a rule holds a visit), and `monday_first_start`
    ... `sunday_first_start` the earliest (the start of the first such rule; None alike;
    `time.min` every day in another time zone); `dated_from` and
    `dated_until` span the dated openings in the mode. Home entries carry the reach box: the
    base's bounding box of the travel radius (GiST-indexed on PostgreSQL, see migration 0006);
    video entries are covered by an index of their own there (0014)."""

    __tablename__ = "match_entries"
    __table_args__ = (Index("ix_match_entries_lookup", "specialty", "mode", "latitude"),)

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True
    )
    specialty: Mapped[str] = mapped_column(String(40), primary_key=True)
    mode: Mapped[Mode] = mapped_column(str_enum(Mode, "match_mode"), primary_key=True)
    profession: Mapped[Profession] = mapped_column(str_enum(Profession, "match_profession", 30))
    listed_until: Mapped[date | None]
    monday_last_start: Mapped[time | None]
    tuesday_last_start: Mapped[time | None]
    wednesday_last_start: Mapped[time | None]
    thursday_last_start: Mapped[time | None]
    friday_last_start: Mapped[time | None]
    saturday_last_start: Mapped[time | None]
    sunday_last_start: Mapped[time | None]
    monday_first_start: Mapped[time | None]
    tuesday_first_start: Mapped[time | None]
    wednesday_first_start: Mapped[time | None]
    thursday_first_start: Mapped[time | None]
    friday_first_start: Mapped[time | None]
    saturday_first_start: Mapped[time | None]
    sunday_first_start: Mapped[time | None]
    dated_from: Mapped[date | None]
    dated_until: Mapped[date | None]
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    travel_radius_km: Mapped[int | None]
    south: Mapped[float | None]
    north: Mapped[float | None]
    west: Mapped[float | None]
    east: Mapped[float | None]


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_LAST_STARTS = tuple(getattr(MatchEntry, f"{day}_last_start") for day in WEEKDAYS)
WEEKDAY_FIRST_STARTS = tuple(getattr(MatchEntry, f"{day}_first_start") for day in WEEKDAYS)
