"""Care requests (what a patient needs, where and when) and bookings (time held with a
practitioner)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.db import Base, Timestamps, UUIDPrimaryKey, str_enum, utcnow
from marketplace.practitioners.models import Mode, VisitType


class RequestStatus(enum.StrEnum):
    OPEN = "open"
    BOOKED = "booked"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class CareRequest(UUIDPrimaryKey, Timestamps, Base):
    """`notes` are health information and `address` personal data: shown only to the patient
    (and their carers), admins (audited) and the practitioner of a visit booked from the request
    while that visit is confirmed; never logged, never in the practitioners' feed."""

    __tablename__ = "care_requests"
    __table_args__ = (
        CheckConstraint("latest > earliest", name="window_forwards"),
        CheckConstraint(
            "mode != 'home' OR (latitude IS NOT NULL AND longitude IS NOT NULL)",
            name="home_has_a_point",
        ),
        Index("ix_care_requests_status_latest", "status", "latest"),
    )

    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    mode: Mapped[Mode] = mapped_column(str_enum(Mode, "request_mode"))
    specialty: Mapped[str] = mapped_column(String(40))
    postcode: Mapped[str | None] = mapped_column(String(8))
    outcode: Mapped[str | None] = mapped_column(String(4))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    earliest: Mapped[datetime]
    latest: Mapped[datetime]
    notes: Mapped[str | None] = mapped_column(Text)
    # Home visits: where to go (personal data: the patient's side, admins and the practitioner
    # of a visit booked from it, never the feed). None for video and for requests made before
    # an address was asked for.
    address: Mapped[str | None] = mapped_column(Text)
    # The point is the postcode's district, not the postcode: the online geocoder was out of
    # reach when the request was made.
    location_approximate: Mapped[bool] = mapped_column(default=False)
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status"), default=RequestStatus.OPEN
    )
    # The patient or their carer (no FK: erasure keeps the ids); None before this was recorded.
    created_by_id: Mapped[uuid.UUID | None]
    withdrawn_by_id: Mapped[uuid.UUID | None]

    def point(self) -> tuple[float, float]:
        """Where a home visit is (the database guarantees one for home requests)."""
        if self.latitude is None or self.longitude is None:
            raise ValueError(f"care request {self.id} has no location")
        return self.latitude, self.longitude


class BookingStatus(enum.StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


TIME_HOLDING = (BookingStatus.PENDING, BookingStatus.CONFIRMED)


class Booking(UUIDPrimaryKey, Timestamps, Base):
    """A visit. No two bookings that hold time (pending or confirmed) overlap for one
    practitioner, nor for one patient: the database refuses it (exclusion constraints on
    PostgreSQL, triggers on SQLite; written by hand in migrations 0005 and 0007, as autogenerate
    cannot express them)."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_bookings_practitioner_starts_at", "practitioner_id", "starts_at"),
        Index("ix_bookings_patient_starts_at", "patient_id", "starts_at"),
        UniqueConstraint("patient_id", "idempotency_key"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE")
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("care_requests.id", ondelete="SET NULL")
    )
    mode: Mapped[Mode] = mapped_column(str_enum(Mode, "booking_mode"))
    visit_type: Mapped[VisitType] = mapped_column(
        str_enum(VisitType, "visit_type"), default=VisitType.FOLLOW_UP
    )
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    status: Mapped[BookingStatus] = mapped_column(
        str_enum(BookingStatus, "booking_status"), default=BookingStatus.CONFIRMED
    )
    # Home visits: where (personal data; the practitioner sees it only while confirmed).
    address: Mapped[str | None] = mapped_column(Text)
    postcode: Mapped[str | None] = mapped_column(String(8))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    # Video visits: the unguessable room name under the configured meeting base URL.
    video_room: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The patient's Idempotency-Key and a digest of what they asked for with it.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    idempotency_digest: Mapped[str | None] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(default=0)  # calendar revisions (iCalendar SEQUENCE)
    # Who made and last moved the booking: the patient, their carer or the practitioner (no FK:
    # erasure keeps the ids).
    booked_by_id: Mapped[uuid.UUID | None]  # None for bookings made before this was recorded
    rescheduled_by_id: Mapped[uuid.UUID | None]
    cancelled_at: Mapped[datetime | None]
    cancelled_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    cancellation_reason: Mapped[str | None] = mapped_column(Text)  # the canceller's own words
    # Why the platform cancelled, as a code (`practitioner_unavailable`); None when a party did.
    cancellation_code: Mapped[str | None] = mapped_column(String(40))
    late_cancellation: Mapped[bool] = mapped_column(default=False)

    @property
    def holds_time(self) -> bool:
        return self.status in TIME_HOLDING


class ReminderKind(enum.StrEnum):
    EARLY = "early"  # the day before by default (REMINDER_EARLY_HOURS)
    LATE = "late"  # a couple of hours before by default (REMINDER_LATE_HOURS)

    @property
    def template(self) -> str:
        """The template of its messages."""
        return f"reminder_{self.value}"


REMINDER_TEMPLATES = tuple(kind.template for kind in ReminderKind)


class ReminderStatus(enum.StrEnum):
    PENDING = "pending"
    QUEUED = "queued"  # its messages are in the outbox
    DROPPED = "dropped"  # not to be sent, with the reason recorded


class Reminder(UUIDPrimaryKey, Base):
    """A reminder to send before a visit: a row written with the booking, not a Celery ETA
    (design decision 3). Unique per booking, kind and the visit start it was made for, so a
    reschedule writes new rows and removes the old pending ones in the same transaction. When
    it is due, the dispatcher queues its messages in the outbox (or drops it, if the visit has
    started or no longer holds time)."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("booking_id", "kind", "visit_starts_at"),
        Index("ix_reminders_status_send_at", "status", "send_at"),
    )

    booking_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"))
    kind: Mapped[ReminderKind] = mapped_column(str_enum(ReminderKind, "reminder_kind"))
    visit_starts_at: Mapped[datetime]
    send_at: Mapped[datetime]
    status: Mapped[ReminderStatus] = mapped_column(
        str_enum(ReminderStatus, "reminder_status"), default=ReminderStatus.PENDING
    )
    queued_at: Mapped[datetime | None]
    dropped_reason: Mapped[str | None] = mapped_column(Text)


class Course(UUIDPrimaryKey, Base):
    """Weekly follow-ups booked together after an assessment: all of them or none."""

    __tablename__ = "courses"

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The patient, their carer or the practitioner's user (no FK: erasure keeps the ids).
    created_by_id: Mapped[uuid.UUID]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CourseSession(Base):
    """A booking of a course (a table of its own, so bookings keep their triggers on SQLite)."""

    __tablename__ = "course_sessions"

    course_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    booking_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("bookings.id", ondelete="CASCADE"), primary_key=True, unique=True
    )
