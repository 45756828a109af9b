from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.accounts import acting_for
from marketplace.accounts.models import Role, User
from marketplace.accounts.passwords import verify_password
from marketplace.booking.models import Booking, BookingStatus, CourseSession
from marketplace.demo import CARER_EMAIL, DEMO_PASSWORD, PATIENT_EMAIL, PEOPLE
from marketplace.practitioners.models import (
    Credential,
    CredentialStatus,
    ListingStatus,
    Mode,
    Practitioner,
    VisitType,
)
from marketplace.reviews.models import Review


def test_create_admin_reads_the_password_from_the_environment(app: Flask, db: Session) -> None:
    result = app.test_cli_runner().invoke(
        args=["create-admin", "Boss@Example.org"],
        env={"MARKETPLACE_ADMIN_PASSWORD": "a-strong-admin-pass"},
    )
    assert result.exit_code == 0, result.output
    admin = db.scalars(select(User).where(User.email == "boss@example.org")).one()
    assert admin.role is Role.ADMIN
    assert verify_password(admin.password_hash, "a-strong-admin-pass")


def test_create_admin_prompts_twice_for_the_password(app: Flask, db: Session) -> None:
    result = app.test_cli_runner().invoke(
        args=["create-admin", "boss@example.org"],
        input="a-strong-admin-pass\na-strong-admin-pass\n",
    )
    assert result.exit_code == 0, result.output
    assert db.scalar(select(User.role).where(User.email == "boss@example.org")) is Role.ADMIN


def test_create_admin_refuses_a_weak_password_clearly(app: Flask, db: Session) -> None:
    result = app.test_cli_runner().invoke(
        args=["create-admin", "boss@example.org"], env={"MARKETPLACE_ADMIN_PASSWORD": "password1"}
    )
    assert result.exit_code != 0
    assert "too common" in result.output
    assert db.scalar(select(User)) is None


def test_demo_load_is_idempotent_and_prints_logins(app: Flask, db: Session) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "load"])
    second = runner.invoke(args=["demo", "load"])
    assert first.exit_code == second.exit_code == 0
    assert DEMO_PASSWORD in first.output
    for email, *_ in PEOPLE:
        assert email in first.output
    assert "credential pending" in first.output
    assert len(db.scalars(select(User)).all()) == len(PEOPLE) + 30
    practitioners = db.scalars(select(Practitioner)).all()
    assert {p.profession.value for p in practitioners} == {
        "physiotherapist",
        "neuromuscular_therapist",
    }
    listed = [p for p in practitioners if p.status is ListingStatus.LISTED]
    assert len(listed) == 25
    assert all(p.weekly_rules for p in practitioners)
    pending = db.scalars(
        select(Credential).where(Credential.status == CredentialStatus.PENDING)
    ).all()
    assert len(pending) == 5
    nmt_listed = [p for p in listed if p.profession.value == "neuromuscular_therapist"]
    assert nmt_listed
    assert all(p.listed_until is None for p in nmt_listed)  # NMT certificates without expiry
    visits = db.scalars(select(Booking).order_by(Booking.starts_at)).all()
    assert [v.status for v in visits] == [BookingStatus.COMPLETED] * 3 + [
        BookingStatus.CONFIRMED
    ] * 6
    # Three past assessments, the next free video and home slots, and a 4-week course.
    assert {v.visit_type for v in visits[:3]} == {VisitType.ASSESSMENT}
    assert db.scalar(select(func.count()).select_from(CourseSession)) == 4
    assert db.scalar(select(func.count()).select_from(Review)) == 3
    # Peter's daughter is his carer, and booked his home visit.
    patient = db.scalars(select(User).where(User.email == PATIENT_EMAIL)).one()
    carer = db.scalars(select(User).where(User.email == CARER_EMAIL)).one()
    assert acting_for.cared_for_ids(db, carer.id) == [patient.id]
    [home] = [v for v in visits if v.mode is Mode.HOME]
    assert (home.patient_id, home.booked_by_id) == (patient.id, carer.id)
