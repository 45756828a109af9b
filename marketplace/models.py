"""Every table of the application, imported in one place so the metadata is complete."""

from marketplace.accounts.models import AccessToken, CarerGrant, User
from marketplace.audit.models import AuditEntry
from marketplace.booking.models import Booking, CareRequest, Course, CourseSession, Reminder
from marketplace.db import Base
from marketplace.geo.models import PostcodeCentroid
from marketplace.notifications.models import Notification
from marketplace.practitioners.models import (
    AvailabilityException,
    Credential,
    Evidence,
    MatchEntry,
    Practitioner,
    PractitionerSpecialty,
    WeeklyRule,
)
from marketplace.reviews.models import Review

__all__ = [
    "AccessToken",
    "AuditEntry",
    "AvailabilityException",
    "Base",
    "Booking",
    "CareRequest",
    "CarerGrant",
    "Course",
    "CourseSession",
    "Credential",
    "Evidence",
    "MatchEntry",
    "Notification",
    "PostcodeCentroid",
    "Practitioner",
    "PractitionerSpecialty",
    "Reminder",
    "Review",
    "User",
    "WeeklyRule",
]
