"""Edge cases on a practitioner's way onto the listing and off it: odd profile, availability
and credential input, the admin's decisions (cursors, expiry, two admins at once), listing,
suspension and deactivation, evidence and account deletion. Each was once a 500, a listing hole
or a privacy slip."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace import migrate
from marketplace.accounts.models import Role, User
from marketplace.admin import service as admin
from marketplace.audit.models import AuditEntry
from marketplace.clock import business_today
from marketplace.db import Database
from marketplace.errors import ValidationFailed
from marketplace.geo.geocoding import TableGeocoder, load_builtin_london_outcodes
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import Credential, ListingStatus, Practitioner
from tests.support.accounts import log_in_as, logged_in
from tests.support.database import fresh_database_url
from tests.support.evidence_files import pdf_file
from tests.support.factories import (
    approve,
    hcpc_fields,
    make_practitioner,
    make_user,
    profile_input,
)
from tests.support.practitioner_api import NMT, put_profile, submit
from tests.support.storage import Backend

TODAY = business_today()


def test_saving_the_same_availability_twice(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    put_profile(client)
    body = {
        "weekly": [{"weekday": 0, "start": "09:00", "end": "12:00"}],
        "exceptions": [{"date": "2027-12-27", "start": "10:00", "end": "12:00"}],
    }
    assert client.put("/api/v1/practitioners/me/availability", json=body).status_code == 200
    assert client.put("/api/v1/practitioners/me/availability", json=body).status_code == 200


@pytest.mark.parametrize(
    "changes",
    [{"session_minutes": 60.5}, {"price_pence": "7500"}, {"travel_radius_km": 10.2}],
)
def test_numbers_must_be_whole_numbers(client: FlaskClient, changes: dict[str, Any]) -> None:
    logged_in(client, "practitioner")
    assert put_profile(client, **changes).status_code == 422


def test_blank_optional_text_is_treated_as_missing(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    assert put_profile(client, bio="   ").status_code == 200
    video_only = put_profile(client, modes=["video"], base_postcode="  ", travel_radius_km=None)
    assert video_only.status_code == 200
    assert video_only.get_json()["base_postcode"] is None


def test_blank_certificate_details_are_field_errors(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    put_profile(client, profession="neuromuscular_therapist")
    response = submit(client, **{**NMT, "issuer": "  ", "programme": "   "})
    assert response.status_code == 422
    assert {"issuer", "programme"} <= set(response.get_json()["error"]["details"]["fields"])


def test_nmt_numbers_are_compared_in_one_form(client: FlaskClient, app: Flask) -> None:
    logged_in(client, "practitioner")
    put_profile(client, profession="neuromuscular_therapist")
    assert submit(client, **{**NMT, "number": "nmt  2024-42"}).get_json()["number"] == "NMT 2024-42"
    other = app.test_client()
    logged_in(other, "practitioner")
    put_profile(other, profession="neuromuscular_therapist")
    assert submit(other, **{**NMT, "number": "NMT 2024-42"}).status_code == 409


def test_a_certificate_issued_in_the_future_is_refused(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    put_profile(client, profession="neuromuscular_therapist")
    future = (TODAY + timedelta(days=3)).isoformat()
    response = submit(client, **{**NMT, "issued_on": future})
    assert "issued_on" in response.get_json()["error"]["details"]["fields"]


@pytest.mark.parametrize("name", ["localtime", "Factory", "Mars/Olympus"])
def test_odd_time_zone_names_are_refused(client: FlaskClient, name: str) -> None:
    logged_in(client, "practitioner")
    put_profile(client)
    response = client.put(
        "/api/v1/practitioners/me/availability", json={"weekly": [], "timezone": name}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "query",
    [
        {"from": "9999-12-31T00:00:00+00:00"},
        {"from": "0001-01-01T00:00:00+01:00"},
        {"to": "2999-01-01T00:00:00+00:00"},
    ],
)
def test_far_away_dates_are_422(client: FlaskClient, db: Session, query: dict[str, str]) -> None:
    practitioner = make_practitioner(db)
    response = client.get(f"/api/v1/practitioners/{practitioner.id}/slots", query_string=query)
    assert response.status_code == 422


@pytest.fixture
def admin_client(client: FlaskClient, db: Session) -> FlaskClient:
    log_in_as(client, make_user(db, Role.ADMIN).email)
    return client


def test_a_cursor_without_a_time_zone_is_refused(admin_client: FlaskClient) -> None:
    import base64
    import json

    forged = base64.urlsafe_b64encode(
        json.dumps(["2020-01-01", "00000000-0000-0000-0000-000000000000"]).encode()
    ).decode()
    for url in ("/api/v1/admin/credentials", "/api/v1/admin/audit"):
        assert admin_client.get(url, query_string={"cursor": forged}).status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "reject", "reason": "   "},
        {"decision": "approve", "register_check": "  ", "expires_on": "2027-12-01"},
    ],
)
def test_blank_decision_text_is_a_field_error(
    admin_client: FlaskClient, db: Session, body: dict[str, Any]
) -> None:
    credential = make_practitioner(db, verified=False).credentials[0]
    response = admin_client.post(f"/api/v1/admin/credentials/{credential.id}/decision", json=body)
    assert response.status_code == 422


def test_hcpc_expiry_comes_from_the_admin_and_is_bounded(
    admin_client: FlaskClient, db: Session
) -> None:
    credential = make_practitioner(db, verified=False).credentials[0]
    credential.expires_on = date(2099, 1, 1)  # what the practitioner claimed
    url = f"/api/v1/admin/credentials/{credential.id}/decision"
    no_date = admin_client.post(url, json={"decision": "approve", "register_check": "seen"})
    assert "expires_on" in no_date.get_json()["error"]["details"]["fields"]
    too_far = admin_client.post(
        url, json={"decision": "approve", "register_check": "seen", "expires_on": "2099-01-01"}
    )
    assert "expires_on" in too_far.get_json()["error"]["details"]["fields"]


def test_a_physiotherapist_is_not_listed_on_another_professions_number(db: Session) -> None:
    practitioner = make_practitioner(db, profession="neuromuscular_therapist", verified=False)
    user = practitioner.user
    credential = practitioners.submit_credential(db, user, hcpc_fields("OT123456"), TODAY)
    approve(db, credential, TODAY + timedelta(days=300), TODAY)
    practitioners.save_profile(db, user, profile_input(), TODAY, TableGeocoder())
    assert practitioner.status is not ListingStatus.LISTED


def test_a_deactivated_practitioner_disappears_at_once(client: FlaskClient, db: Session) -> None:
    practitioner = make_practitioner(db)
    assert client.get(f"/api/v1/practitioners/{practitioner.id}").status_code == 200
    practitioner.user.is_active = False  # changed elsewhere, without re-applying the rule
    db.flush()
    assert client.get(f"/api/v1/practitioners/{practitioner.id}").status_code == 404
    assert client.get(f"/api/v1/practitioners/{practitioner.id}/slots").status_code == 404


def test_suspension_audit_rows_hold_no_reason(db: Session) -> None:
    practitioner = make_practitioner(db, verified=False)
    boss = make_user(db, Role.ADMIN)
    admin.suspend_practitioner(db, boss, practitioner.id, "Complaint about a stroke patient", TODAY)
    admin.reinstate_practitioner(db, boss, practitioner.id, "Resolved", TODAY)
    rows = db.scalars(select(AuditEntry).where(AuditEntry.subject_id == practitioner.id)).all()
    assert rows
    assert all(
        "stroke" not in str(row.details) and "Resolved" not in str(row.details) for row in rows
    )
    assert practitioner.status is ListingStatus.PENDING  # never listed: back to pending


def test_an_account_that_acted_can_still_be_deleted(db: Session) -> None:
    credential = make_practitioner(db, verified=False).credentials[0]
    boss = make_user(db, Role.ADMIN)
    admin.decide_credential(
        db,
        boss,
        credential.id,
        decision=admin.Decision.REJECT,
        reason="Unreadable",
        expires_on=None,
        register_check=None,
        today=TODAY,
    )
    boss_id = boss.id
    db.delete(boss)
    db.flush()
    assert db.get(User, boss_id) is None
    assert db.scalar(select(AuditEntry.actor_id).where(AuditEntry.actor_id == boss_id)) == boss_id


def test_evidence_written_for_a_rolled_back_upload_is_removed(
    db: Session, evidence_backend: Backend
) -> None:
    practitioner = make_practitioner(db, verified=False)
    credential = practitioner.credentials[0]
    import io

    savepoint = db.begin_nested()
    evidence = practitioners.add_evidence(
        db, practitioner.user, credential.id, io.BytesIO(pdf_file()), evidence_backend.store
    )
    assert evidence_backend.names() == {evidence.stored_name}
    savepoint.rollback()
    assert evidence_backend.names() == set()


def test_the_daily_task_runs_the_lapse_check(app: Flask, db: Session) -> None:
    from worker.tasks import check_credential_lapses

    make_practitioner(db, expires_on=TODAY - timedelta(days=1), today=TODAY - timedelta(days=30))
    with app.app_context():
        assert check_credential_lapses.run() == {"delisted": 1, "warned": 0, "visits_cancelled": 0}
        assert check_credential_lapses.run() == {"delisted": 0, "warned": 0, "visits_cancelled": 0}


def test_two_admins_deciding_at_once_record_one_decision(app: Flask, tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path, "marketplace_test_decisions")
    migrate.upgrade(url)
    database = Database(url)
    with database.session_scope() as session:
        load_builtin_london_outcodes(session)
        credential_id = make_practitioner(session, verified=False).credentials[0].id
        admins = [make_user(session, Role.ADMIN).id for _ in range(2)]
    results: list[str] = []
    barrier = threading.Barrier(2)

    def decide(admin_id: object) -> None:
        barrier.wait()
        try:
            with database.session_scope() as session:
                admin.decide_credential(
                    session,
                    session.get_one(User, admin_id),
                    credential_id,
                    decision=admin.Decision.APPROVE,
                    reason=None,
                    expires_on=TODAY + timedelta(days=200),
                    register_check="seen",
                    today=TODAY,
                )
            results.append("approved")
        except Exception as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=decide, args=(admin_id,)) for admin_id in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == ["CredentialNotPending", "approved"]
    with database.session_scope() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "credential.approved")
        ).all()
        assert len(rows) == 1
        assert session.get_one(Credential, credential_id).status.value == "verified"
        assert session.scalar(select(Practitioner.status)) is ListingStatus.LISTED
    database.engine.dispose()


def test_validation_failed_is_the_error_for_unknown_zones() -> None:
    with pytest.raises(ValidationFailed):
        practitioners.zone_named("localtime")
