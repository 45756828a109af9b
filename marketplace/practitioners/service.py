"""Practitioner rules: profile, credentials, evidence, availability, public views.

Every function takes a session, may flush, and never commits.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.audit.service import record_audit
from marketplace.db import after_rollback
from marketplace.errors import Conflict, NotFound, ValidationFailed
from marketplace.geo.geocoding import Geocoder, geocode
from marketplace.geo.postcodes import outward_code
from marketplace.practitioners import availability
from marketplace.practitioners.diary import Diary
from marketplace.practitioners.evidence import store_evidence
from marketplace.practitioners.listing import (
    NMT_MINIMUM_HOURS,
    get_listed_practitioner,
    listing_ends_at,
    refresh_listing,
)
from marketplace.practitioners.match_index import reindex
from marketplace.practitioners.models import (
    DEFAULT_ASSESSMENT_MINUTES,
    AvailabilityException,
    Credential,
    CredentialKind,
    CredentialStatus,
    Evidence,
    Mode,
    Practitioner,
    PractitionerSpecialty,
    Profession,
    VisitType,
    WeeklyRule,
)
from marketplace.practitioners.vocabulary import SPECIALTY_BY_SLUG, SPECIALTY_SLUGS
from marketplace.storage import ObjectStore

HCPC_CODES = (
    "AS",
    "BS",
    "CH",
    "CS",
    "DT",
    "HAD",
    "ODP",
    "OR",
    "OT",
    "PA",
    "PH",
    "PO",
    "PYL",
    "RA",
    "SL",
)
_HCPC_NUMBER = re.compile(rf"^(?P<code>{'|'.join(HCPC_CODES)})(?P<digits>[0-9]{{1,6}})$")


class ProfileRequired(Conflict):
    code = "profile_required"
    message = "Fill in your practitioner profile first."


class CredentialNumberInUse(Conflict):
    code = "credential_number_in_use"
    message = "This registration number is already held by another practitioner."


class CredentialNotPending(Conflict):
    code = "credential_not_pending"
    message = "This credential has already been decided."


@dataclass(frozen=True)
class ProfileInput:
    profession: Profession
    bio: str
    specialties: list[str]
    modes: list[Mode]
    base_postcode: str | None
    travel_radius_km: int | None
    session_minutes: int
    price_pence: int
    languages: list[str]
    assessment_minutes: int = DEFAULT_ASSESSMENT_MINUTES
    assessment_price_pence: int | None = None  # the session's price unless given


# --- profile ---------------------------------------------------------------------------------


def find_profile(session: Session, user: User) -> Practitioner | None:
    return session.scalar(select(Practitioner).where(Practitioner.user_id == user.id))


def get_own_profile(session: Session, user: User) -> Practitioner:
    profile = find_profile(session, user)
    if profile is None:
        raise NotFound(
            "You have no practitioner profile yet: PUT /practitioners/me.", code="profile_not_found"
        )
    return profile


def _check_specialties(slugs: list[str]) -> list[str]:
    unknown = sorted(set(slugs) - set(SPECIALTY_SLUGS))
    if unknown:
        raise ValidationFailed(
            details={
                "fields": {"specialties": [f"Unknown specialty: {', '.join(unknown)}."]},
                "allowed": list(SPECIALTY_SLUGS),
            }
        )
    if not slugs:
        raise ValidationFailed.for_field("specialties", "Choose at least one specialty.")
    return sorted(set(slugs))


def _check_home_visit_fields(data: ProfileInput) -> None:
    if Mode.HOME not in data.modes:
        return
    problems: dict[str, list[str]] = {}
    if not data.base_postcode:
        problems["base_postcode"] = ["Home visits need a base postcode."]
    if data.travel_radius_km is None:
        problems["travel_radius_km"] = ["Home visits need a travel radius (1-80 km)."]
    if problems:
        raise ValidationFailed(details={"fields": problems})


def save_profile(
    session: Session, user: User, data: ProfileInput, today: date, geocoder: Geocoder
) -> Practitioner:
    """Create or replace the caller's profile (its base placed on the map once, here), then
    re-apply the listing rule."""
    specialties = _check_specialties(data.specialties)
    if not data.modes:
        raise ValidationFailed.for_field("modes", "Offer at least one mode: home or video.")
    _check_home_visit_fields(data)
    postcode, point = None, None
    if data.base_postcode:
        postcode, point = geocode(session, geocoder, data.base_postcode, "base_postcode")
    profile = find_profile(session, user)
    if profile is None:
        profile = Practitioner(user=user, user_id=user.id)
        session.add(profile)
    profile.base_postcode = postcode
    profile.latitude = point.latitude if point else None
    profile.longitude = point.longitude if point else None
    profile.travel_radius_km = data.travel_radius_km
    profile.profession = data.profession
    profile.bio = data.bio
    profile.offers_home = Mode.HOME in data.modes
    profile.offers_video = Mode.VIDEO in data.modes
    profile.session_minutes = data.session_minutes
    profile.price_pence = data.price_pence
    profile.assessment_minutes = data.assessment_minutes
    profile.assessment_price_pence = data.assessment_price_pence or data.price_pence
    profile.languages = sorted(set(data.languages))
    profile.specialties = [PractitionerSpecialty(slug=slug) for slug in specialties]
    session.flush()
    refresh_listing(session, profile, today, actor_id=user.id)
    return profile


# --- credentials -----------------------------------------------------------------------------


def normalise_hcpc_number(number: str, profession: Profession) -> str:
    compact = re.sub(r"[\s-]+", "", number).upper()
    match = _HCPC_NUMBER.match(compact)
    if match is None:
        raise ValidationFailed.for_field(
            "number",
            "An HCPC number is a profession code (e.g. PH) followed by up to six digits, "
            "e.g. PH123456.",
        )
    if profession is Profession.PHYSIOTHERAPIST and match.group("code") != "PH":
        raise ValidationFailed.for_field(
            "number", "A physiotherapist's HCPC number starts with PH."
        )
    return compact


def _check_nmt_certificate(fields: dict[str, Any], today: date) -> None:
    problems: dict[str, list[str]] = {}
    for name in ("issuer", "programme", "training_hours", "issued_on"):
        if fields.get(name) in (None, ""):
            problems[name] = ["Required for an NMT certificate."]
    hours = fields.get("training_hours")
    if hours is not None and hours < NMT_MINIMUM_HOURS:
        problems["training_hours"] = [
            f"NMT certificates need at least {NMT_MINIMUM_HOURS} training hours; "
            f"this one has {hours}."
        ]
    issued, expires = fields.get("issued_on"), fields.get("expires_on")
    if issued and issued > today:
        problems["issued_on"] = ["The issue date cannot be in the future."]
    if issued and expires and expires <= issued:
        problems["expires_on"] = ["The expiry date must be after the issue date."]
    if problems:
        raise ValidationFailed(details={"fields": problems})


def number_held_elsewhere(
    session: Session,
    kind: CredentialKind,
    number: str,
    practitioner_id: uuid.UUID,
    statuses: tuple[CredentialStatus, ...] = (CredentialStatus.PENDING, CredentialStatus.VERIFIED),
) -> bool:
    """Whether another practitioner holds this registration number in one of `statuses`."""
    return bool(
        session.scalar(
            select(Credential.id).where(
                Credential.kind == kind,
                Credential.number == number,
                Credential.practitioner_id != practitioner_id,
                Credential.status.in_(statuses),
            )
        )
    )


def submit_credential(
    session: Session, user: User, fields: dict[str, Any], today: date
) -> Credential:
    profile = find_profile(session, user)
    if profile is None:
        raise ProfileRequired()
    kind = CredentialKind(fields["kind"])
    if kind is CredentialKind.HCPC:
        number = normalise_hcpc_number(fields["number"], profile.profession)
    else:
        number = " ".join(fields["number"].split()).upper()
        _check_nmt_certificate(fields, today)
    if number_held_elsewhere(session, kind, number, profile.id):
        raise CredentialNumberInUse()
    credential = Credential(
        practitioner=profile,
        kind=kind,
        number=number,
        issuer=fields.get("issuer"),
        programme=fields.get("programme"),
        training_hours=fields.get("training_hours"),
        issued_on=fields.get("issued_on"),
        expires_on=fields.get("expires_on"),
    )
    session.add(credential)
    session.flush()
    return credential


def own_credential(session: Session, user: User, credential_id: uuid.UUID) -> Credential:
    credential = session.get(Credential, credential_id)
    if credential is None or credential.practitioner.user_id != user.id:
        raise NotFound("No such credential of yours.")
    return credential


def add_evidence(
    session: Session, user: User, credential_id: uuid.UUID, stream: BinaryIO, store: ObjectStore
) -> Evidence:
    """The file is stored whole before its row is flushed (a store that fails leaves no row),
    and removed again if the transaction rolls back (a row that never exists leaves no file)."""
    credential = own_credential(session, user, credential_id)
    if credential.status is not CredentialStatus.PENDING:
        raise CredentialNotPending("Evidence can only be added while a credential is pending.")
    stored = store_evidence(stream, store)
    after_rollback(session, lambda: store.delete(stored.stored_name))
    evidence = Evidence(
        credential_id=credential.id,
        stored_name=stored.stored_name,
        content_type=stored.content_type,
        size_bytes=stored.size_bytes,
        sha256=stored.sha256,
    )
    session.add(evidence)
    session.flush()
    return evidence


def open_evidence(
    session: Session, viewer: User, credential_id: uuid.UUID, evidence_id: uuid.UUID
) -> Evidence:
    """The evidence, for its practitioner or an admin; an admin's read is audited."""
    evidence = session.get(Evidence, evidence_id)
    if evidence is None or evidence.credential_id != credential_id:
        raise NotFound("No such evidence.")
    credential = session.get_one(Credential, credential_id)
    if viewer.role is Role.ADMIN:
        record_audit(
            session,
            actor_id=viewer.id,
            action="evidence.viewed",
            subject_type="credential",
            subject_id=credential.id,
            details={"evidence_id": str(evidence.id)},
        )
    elif credential.practitioner.user_id != viewer.id:
        raise NotFound("No such evidence.")
    return evidence


# --- availability ----------------------------------------------------------------------------


@cache
def _time_zone_names() -> frozenset[str]:
    # "localtime" would mean the server's own zone; the others are not places.
    return frozenset(available_timezones() - {"localtime", "Factory", "posixrules"})


def zone_named(name: str) -> ZoneInfo:
    if name not in _time_zone_names():
        raise ValidationFailed.for_field("timezone", f"Unknown time zone {name!r}.")
    return ZoneInfo(name)


def _opening(item: dict[str, Any], field: str, **where: Any) -> availability.Opening:
    start, end = item["start"], item["end"]
    if end <= start:
        raise ValidationFailed.for_field(
            field, f"{start:%H:%M}-{end:%H:%M}: the end must be after the start."
        )
    modes = sorted(set(item.get("modes") or [Mode.HOME.value, Mode.VIDEO.value]))
    return availability.Opening(start=start, end=end, modes=frozenset(modes), **where)


def _refuse_overlaps(openings: list[availability.Opening], field: str) -> None:
    overlap = availability.find_overlap(openings)
    if overlap is not None:
        first, second = overlap
        day = first.on_date.isoformat() if first.on_date else f"weekday {first.weekday}"
        raise ValidationFailed.for_field(
            field,
            f"{day}: {first.start:%H:%M}-{first.end:%H:%M} overlaps "
            f"{second.start:%H:%M}-{second.end:%H:%M}; merge them into one.",
        )


def set_availability(session: Session, user: User, fields: dict[str, Any]) -> Practitioner:
    """Replace the weekly rules and exceptions in one go (overlaps are refused, not doubled)."""
    profile = get_own_profile(session, user)
    zone_named(fields["timezone"])
    weekly = [_opening(item, "weekly", weekday=item["weekday"]) for item in fields["weekly"]]
    _refuse_overlaps(weekly, "weekly")
    days_off = [item["date"] for item in fields["exceptions"] if not item["available"]]
    dated = [
        _opening(item, "exceptions", on_date=item["date"])
        for item in fields["exceptions"]
        if item["available"]
    ]
    _refuse_overlaps(dated, "exceptions")
    clash = sorted(set(days_off) & {opening.on_date for opening in dated})
    if len(set(days_off)) != len(days_off) or clash:
        raise ValidationFailed.for_field(
            "exceptions", "Give each day off once, without hours that day."
        )
    for setting in ("min_notice_hours", "horizon_days", "buffer_minutes", "travel_buffer_minutes"):
        if fields.get(setting) is not None:
            setattr(profile, setting, fields[setting])
    profile.timezone = fields["timezone"]
    # Old rows go first: a replacement row may share the unique (date, start) of an old one.
    profile.weekly_rules = []
    profile.exceptions = []
    session.flush()
    profile.weekly_rules = [
        WeeklyRule(weekday=o.weekday, start_time=o.start, end_time=o.end, modes=sorted(o.modes))
        for o in weekly
    ]
    profile.exceptions = [
        AvailabilityException(on_date=day, available=False, modes=[]) for day in days_off
    ] + [
        AvailabilityException(
            on_date=o.on_date,
            available=True,
            start_time=o.start,
            end_time=o.end,
            modes=sorted(o.modes),
        )
        for o in dated
    ]
    reindex(profile)
    session.flush()
    return profile


def open_intervals(practitioner: Diary, first: date, last: date) -> list[availability.Interval]:
    """Open hours as UTC intervals for local dates first..last, in the modes the practitioner
    offers (a rule's mode the profile no longer offers is not open)."""
    zone = ZoneInfo(practitioner.timezone)
    offered = frozenset(mode.value for mode in practitioner.modes)
    weekly = [
        availability.Opening(r.start_time, r.end_time, frozenset(r.modes) & offered, r.weekday)
        for r in practitioner.weekly_rules
    ]
    days_off = [e.on_date for e in practitioner.exceptions if not e.available]
    dated = [
        availability.Opening(
            e.start_time, e.end_time, frozenset(e.modes) & offered, on_date=e.on_date
        )
        for e in practitioner.exceptions
        if e.available and e.start_time is not None and e.end_time is not None
    ]
    intervals = availability.expand(weekly, days_off, dated, zone, first, last)
    return [interval for interval in intervals if interval.modes]


def bookable_window(practitioner: Diary, now: datetime) -> tuple[datetime, datetime]:
    """From now plus the minimum notice to the end of the booking horizon or of the listing's
    last day (its credential is valid through that London date), whichever comes first."""
    not_after = now + timedelta(days=practitioner.horizon_days)
    if practitioner.listed_until is not None:
        not_after = min(not_after, listing_ends_at(practitioner.listed_until))
    return now + timedelta(hours=practitioner.min_notice_hours), not_after


def available_slots(
    practitioner: Diary,
    start: datetime,
    end: datetime,
    now: datetime,
    mode: str | None = None,
    busy: list[tuple[datetime, datetime]] | None = None,
    visit_type: VisitType = VisitType.FOLLOW_UP,
) -> Iterator[availability.Interval]:
    """Slots as long as the visit type (an assessment or a follow-up session) in [start, end)
    within notice and horizon, clear of `busy`; one at a time, in time order."""
    not_before, not_after = bookable_window(practitioner, now)
    # In UTC: adding a visit's length to a London time would count wall-clock hours across DST.
    not_before, not_after = max(not_before, start).astimezone(UTC), min(not_after, end)
    if not_after <= not_before:
        return iter(())
    zone = ZoneInfo(practitioner.timezone)
    first = not_before.astimezone(zone).date()
    last = not_after.astimezone(zone).date()
    intervals = open_intervals(practitioner, first, last)
    return availability.cut_slots(
        intervals,
        practitioner.visit_length(visit_type),
        not_before,
        not_after,
        mode,
        busy or [],
    )


def public_profile(session: Session, practitioner_id: uuid.UUID, today: date) -> dict[str, Any]:
    """What anyone may see of a listed practitioner: the area, never the full postcode."""
    practitioner = get_listed_practitioner(session, practitioner_id, today)
    return {
        "id": practitioner.id,
        "user": practitioner.user,
        "profession": practitioner.profession,
        "bio": practitioner.bio,
        "specialties": [SPECIALTY_BY_SLUG[slug] for slug in practitioner.specialty_slugs],
        "modes": practitioner.modes,
        "area": outward_code(practitioner.base_postcode) if practitioner.base_postcode else None,
        "travel_radius_km": practitioner.travel_radius_km,
        "session_minutes": practitioner.session_minutes,
        "price_pence": practitioner.price_pence,
        "assessment_minutes": practitioner.assessment_minutes,
        "assessment_price_pence": practitioner.assessment_price_pence,
        "languages": practitioner.languages,
        "listed_until": practitioner.listed_until,
    }
