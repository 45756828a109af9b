"""The verification queue, decisions and their audit rows, suspension, the audit log."""

from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.admin import service as admin
from marketplace.audit.models import AuditEntry
from marketplace.clock import business_today
from marketplace.errors import Forbidden
from marketplace.geo.geocoding import TableGeocoder
from marketplace.notifications.models import Notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import Credential, CredentialStatus, Practitioner
from tests.support.accounts import log_in_as, logged_in
from tests.support.evidence_files import assert_sandboxed, pdf_file
from tests.support.factories import (
    hcpc_fields,
    make_practitioner,
    make_user,
    pending_credential,
    profile_input,
)
from tests.support.practitioner_api import credential_through_the_api
from tests.support.storage import Backend

NEXT_YEAR = (business_today() + timedelta(days=365)).isoformat()


@pytest.fixture
def admin_client(client: FlaskClient, db: Session) -> FlaskClient:
    user = make_user(db, Role.ADMIN)
    log_in_as(client, user.email)
    return client


def decide(client: FlaskClient, credential: Credential, **body: Any) -> Any:
    return client.post(f"/api/v1/admin/credentials/{credential.id}/decision", json=body)


def audit_rows(db: Session, action: str) -> list[AuditEntry]:
    return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_queue_is_oldest_first_with_evidence(admin_client: FlaskClient, db: Session) -> None:
    first = pending_credential(db)
    second = pending_credential(db)
    second.submitted_at = first.submitted_at + timedelta(seconds=1)
    db.flush()
    items = admin_client.get("/api/v1/admin/credentials").get_json()["items"]
    assert [item["id"] for item in items] == [str(first.id), str(second.id)]
    assert items[0]["practitioner"]["profession"] == "physiotherapist"
    assert items[0]["evidence"] == []


def test_queue_pages_with_a_cursor(admin_client: FlaskClient, db: Session) -> None:
    made = [pending_credential(db) for _ in range(3)]
    page = admin_client.get("/api/v1/admin/credentials?limit=2").get_json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]
    rest = admin_client.get(
        f"/api/v1/admin/credentials?limit=2&cursor={page['next_cursor']}"
    ).get_json()
    seen = [item["id"] for item in page["items"] + rest["items"]]
    assert sorted(seen) == sorted(str(c.id) for c in made)
    assert rest["next_cursor"] is None
    assert admin_client.get("/api/v1/admin/credentials?cursor=garbage").status_code == 422
    # A well-formed cursor whose time overflows in UTC (year 1, an hour ahead of UTC).
    edge = base64.urlsafe_b64encode(
        json.dumps(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())]).encode()
    ).decode()
    assert admin_client.get(f"/api/v1/admin/credentials?cursor={edge}").status_code == 422
    assert admin_client.get("/api/v1/admin/credentials?limit=101").status_code == 422


def test_approval_lists_the_practitioner_audits_and_notifies(
    admin_client: FlaskClient, db: Session
) -> None:
    credential = pending_credential(db)
    response = decide(
        admin_client,
        credential,
        decision="approve",
        expires_on=NEXT_YEAR,
        register_check="Register shows PH registered, no conditions.",
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "verified"
    assert response.get_json()["register_check"].startswith("Register shows")
    db.expire_all()
    practitioner = db.get_one(Practitioner, credential.practitioner_id)
    assert practitioner.status.value == "listed"
    [row] = audit_rows(db, "credential.approved")
    assert row.subject_id == credential.id
    assert row.actor_id is not None
    assert row.details["expires_on"] == NEXT_YEAR
    assert audit_rows(db, "practitioner.listed")
    notification = db.scalars(select(Notification)).one()
    assert notification.template == "credential_approved"
    assert notification.user_id == practitioner.user_id


def test_approval_needs_the_register_check_and_a_future_expiry(
    admin_client: FlaskClient, db: Session
) -> None:
    credential = pending_credential(db)
    missing = decide(admin_client, credential, decision="approve")
    assert set(missing.get_json()["error"]["details"]["fields"]) == {"register_check", "expires_on"}
    past = decide(
        admin_client, credential, decision="approve", register_check="ok", expires_on="2020-01-01"
    )
    assert "expires_on" in past.get_json()["error"]["details"]["fields"]
    assert db.get_one(Credential, credential.id).status is CredentialStatus.PENDING


def test_rejection_needs_a_reason_and_is_audited(admin_client: FlaskClient, db: Session) -> None:
    credential = pending_credential(db)
    assert decide(admin_client, credential, decision="reject").status_code == 422
    response = decide(
        admin_client, credential, decision="reject", reason="The register shows a different name."
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "rejected"
    assert audit_rows(db, "credential.rejected")
    assert db.get_one(Practitioner, credential.practitioner_id).status.value == "pending"
    again = decide(
        admin_client, credential, decision="approve", register_check="x", expires_on=NEXT_YEAR
    )
    assert again.status_code == 409


def test_a_practitioner_cannot_decide_their_own_credential(client: FlaskClient) -> None:
    logged_in(client, "practitioner")
    credential = {"id": credential_through_the_api(client, "PH424242")}
    response = client.post(
        f"/api/v1/admin/credentials/{credential['id']}/decision",
        json={"decision": "approve", "register_check": "me", "expires_on": NEXT_YEAR},
    )
    assert response.status_code == 403
    assert (
        client.get("/api/v1/practitioners/me").get_json()["credentials"][0]["status"] == "pending"
    )


def test_nobody_decides_on_a_credential_of_their_own_account(db: Session) -> None:
    # Even an account that somehow is an admin with a practitioner profile is refused.
    odd_admin = make_user(db, Role.ADMIN)
    practitioners.save_profile(db, odd_admin, profile_input(), business_today(), TableGeocoder())
    credential = practitioners.submit_credential(db, odd_admin, hcpc_fields(), business_today())
    with pytest.raises(Forbidden):
        admin.decide_credential(
            db,
            odd_admin,
            credential.id,
            decision=admin.Decision.APPROVE,
            reason=None,
            expires_on=date(2099, 1, 1),
            register_check="x",
            today=business_today(),
        )


def test_a_number_verified_for_someone_else_cannot_be_approved_again(
    admin_client: FlaskClient, db: Session
) -> None:
    holder = make_practitioner(db)
    number = holder.credentials[0].number
    holder.credentials[0].status = CredentialStatus.PENDING  # let a second claim through the form
    db.flush()
    claimant = pending_credential(db)
    claimant.number = number
    holder.credentials[0].status = CredentialStatus.VERIFIED
    db.flush()
    response = decide(
        admin_client, claimant, decision="approve", register_check="x", expires_on=NEXT_YEAR
    )
    assert response.status_code == 409


def test_renewal_supersedes_the_old_verification(admin_client: FlaskClient, db: Session) -> None:
    practitioner = make_practitioner(db)
    old = practitioner.credentials[0]
    renewal = practitioners.submit_credential(
        db, practitioner.user, hcpc_fields(old.number), business_today()
    )
    later = (business_today() + timedelta(days=700)).isoformat()
    response = decide(
        admin_client, renewal, decision="approve", register_check="renewed", expires_on=later
    )
    assert response.status_code == 200, response.get_json()
    db.expire_all()
    assert db.get_one(Credential, old.id).status is CredentialStatus.SUPERSEDED
    listed_until = db.get_one(Practitioner, practitioner.id).listed_until
    assert listed_until is not None
    assert listed_until.isoformat() == later


def test_suspend_and_reinstate(admin_client: FlaskClient, db: Session, app: Flask) -> None:
    practitioner = make_practitioner(db)
    url = f"/api/v1/admin/practitioners/{practitioner.id}"
    assert admin_client.post(f"{url}/suspend", json={}).status_code == 422
    suspended = admin_client.post(f"{url}/suspend", json={"reason": "Complaint under review"})
    assert suspended.status_code == 200
    assert suspended.get_json()["status"] == "delisted"
    assert app.test_client().get(f"/api/v1/practitioners/{practitioner.id}").status_code == 404
    assert admin_client.post(f"{url}/suspend", json={"reason": "again"}).status_code == 409
    reinstated = admin_client.post(f"{url}/reinstate", json={"reason": "Complaint closed"})
    assert reinstated.get_json()["status"] == "listed"
    assert app.test_client().get(f"/api/v1/practitioners/{practitioner.id}").status_code == 200
    actions = [
        row.action
        for row in db.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject_id == practitioner.id)
            .order_by(AuditEntry.at)
        )
    ]
    assert "practitioner.suspended" in actions
    assert "practitioner.reinstated" in actions


def test_admin_endpoints_refuse_other_roles(client: FlaskClient, db: Session) -> None:
    practitioner = make_practitioner(db)
    logged_in(client, "patient")
    assert client.get("/api/v1/admin/credentials").status_code == 403
    assert client.get("/api/v1/admin/audit").status_code == 403
    assert (
        client.post(
            f"/api/v1/admin/practitioners/{practitioner.id}/suspend", json={"reason": "x"}
        ).status_code
        == 403
    )


def test_audit_log_filters_and_holds_no_health_data(admin_client: FlaskClient, db: Session) -> None:
    credential = pending_credential(db)
    decide(admin_client, credential, decision="reject", reason="Blurry scan")
    rows = admin_client.get(
        "/api/v1/admin/audit",
        query_string={"subject_type": "credential", "subject_id": str(credential.id)},
    ).get_json()["items"]
    assert [row["action"] for row in rows] == ["credential.rejected"]
    assert set(rows[0]) == {"at", "actor_id", "action", "subject_type", "subject_id", "details"}


def test_admin_evidence_reads_are_audited(
    admin_client: FlaskClient, db: Session, app: Flask, evidence_backend: Backend
) -> None:
    owner = app.test_client()
    user = logged_in(owner, "practitioner")
    credential_id = credential_through_the_api(owner, "PH7")
    pdf = pdf_file()
    evidence_id = owner.post(
        f"/api/v1/practitioners/me/credentials/{credential_id}/evidence",
        data={"file": (io.BytesIO(pdf), "x.pdf", "application/pdf")},
        content_type="multipart/form-data",
    ).get_json()["id"]
    assert len(evidence_backend.names()) == 1
    response = admin_client.get(f"/api/v1/admin/credentials/{credential_id}/evidence/{evidence_id}")
    assert response.status_code == 200
    assert response.data == pdf
    assert response.content_length == len(pdf)
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert_sandboxed(response, frame_ancestors="'none'")
    [row] = audit_rows(db, "evidence.viewed")
    assert str(row.subject_id) == credential_id
    assert row.details == {"evidence_id": evidence_id}
    assert str(row.actor_id) != user["id"]


def test_the_audit_log_is_append_only_in_the_database(db: Session) -> None:
    make_practitioner(db)
    assert db.scalar(select(AuditEntry.id))
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("UPDATE audit_log SET action = 'forged'"))
    with pytest.raises(DBAPIError), db.begin_nested():
        db.execute(text("DELETE FROM audit_log"))
    assert db.scalar(select(AuditEntry.id))
