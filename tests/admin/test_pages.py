"""The back office pages: who gets in, CSRF, the queue, decisions with errors next to the
fields, evidence views audited, suspensions, failed notifications, the audit log."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role, User
from marketplace.audit.models import AuditEntry
from marketplace.clock import business_today
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import queue_notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.models import (
    Credential,
    CredentialStatus,
    ListingStatus,
    Practitioner,
)
from tests.support.accounts import PASSWORD, logged_in, login
from tests.support.admin_pages import CSRF, csrf_token, post_form, sign_in
from tests.support.evidence_files import assert_sandboxed, pdf_file, png_file
from tests.support.factories import make_practitioner, make_user, pending_credential
from tests.support.storage import Backend

NEXT_YEAR = (business_today() + timedelta(days=365)).isoformat()


@pytest.fixture
def admin(db: Session) -> User:
    return make_user(db, Role.ADMIN)


@pytest.fixture
def admin_pages(client: FlaskClient, admin: User) -> FlaskClient:
    assert sign_in(client, admin.email).status_code == 302
    return client


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


class TestWhoGetsIn:
    def test_signed_out_visitors_go_to_the_sign_in_page(self, client: FlaskClient) -> None:
        response = client.get("/admin/credentials")
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/login?next=/admin/credentials"

    def test_an_admin_signs_in_and_lands_where_they_were_going(
        self, client: FlaskClient, admin: User
    ) -> None:
        token = csrf_token(client, "/admin/login?next=/admin/audit")
        response = client.post(
            "/admin/login?next=/admin/audit",
            data={"csrf_token": token, "email": admin.email, "password": PASSWORD},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/audit"
        assert "Signed in as" in text(client.get("/admin/audit"))

    def test_next_never_leaves_the_back_office(self, client: FlaskClient, admin: User) -> None:
        token = csrf_token(client, "/admin/login")
        response = client.post(
            "/admin/login?next=https://evil.example/admin",
            data={"csrf_token": token, "email": admin.email, "password": PASSWORD},
        )
        assert response.headers["Location"] == "/admin/credentials"

    def test_a_wrong_password_is_shown_on_the_form(self, client: FlaskClient, admin: User) -> None:
        response = sign_in(client, admin.email, "not the password")
        assert response.status_code == 401
        assert "The email or password is wrong." in text(response)
        assert client.get("/admin/credentials").status_code == 302

    def test_one_admins_typos_do_not_lock_out_another_at_the_same_address(
        self, client: FlaskClient, db: Session, admin: User
    ) -> None:
        colleague = make_user(db, Role.ADMIN)
        typos = [sign_in(client, admin.email, "not the password").status_code for _ in range(11)]
        assert typos == [401] * 10 + [429]
        assert sign_in(client, colleague.email).status_code == 302

    @pytest.mark.parametrize("role", [Role.PATIENT, Role.PRACTITIONER])
    def test_patients_and_practitioners_cannot_sign_in(
        self, client: FlaskClient, db: Session, role: Role
    ) -> None:
        user = make_user(db, role)
        right = sign_in(client, user.email)
        wrong = sign_in(client, user.email, "not the password")
        # No password oracle: the right password of a non-admin gets the wrong one's answer.
        assert right.status_code == wrong.status_code == 401
        assert "The email or password is wrong." in text(right)
        assert CSRF.sub("", text(right)) == CSRF.sub("", text(wrong))  # the very same page
        assert client.get("/admin/credentials").status_code == 302

    def test_a_non_admins_right_password_counts_as_a_failure(
        self, client: FlaskClient, db: Session
    ) -> None:
        user = make_user(db)
        statuses = [sign_in(client, user.email).status_code for _ in range(11)]
        assert statuses == [401] * 10 + [429]

    def test_the_back_office_and_the_api_share_one_budget(
        self, client: FlaskClient, admin: User
    ) -> None:
        """One budget of guesses per account, however the password is presented."""
        api = [login(client, admin.email, "not the password").status_code for _ in range(5)]
        pages = [sign_in(client, admin.email, "not the password").status_code for _ in range(5)]
        assert api + pages == [401] * 10
        assert login(client, admin.email, "not the password").status_code == 429
        refused = sign_in(client, admin.email)
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) > 0
        assert "Too many attempts" in text(refused)

    @pytest.mark.parametrize("role", ["patient", "practitioner"])
    def test_a_signed_in_patient_or_practitioner_is_refused_with_a_page(
        self, client: FlaskClient, role: str
    ) -> None:
        logged_in(client, role)
        response = client.get("/admin/credentials")
        assert response.status_code == 403
        assert response.mimetype == "text/html"
        assert "for admins only" in text(response)

    def test_a_form_without_its_csrf_token_is_refused(
        self, client: FlaskClient, admin: User
    ) -> None:
        response = client.post("/admin/login", data={"email": admin.email, "password": PASSWORD})
        assert response.status_code == 400
        assert "CSRF" in text(response)
        assert client.get("/admin/credentials").status_code == 302

    def test_a_cross_site_post_cannot_decide(self, admin_pages: FlaskClient, db: Session) -> None:
        credential = pending_credential(db)
        response = admin_pages.post(
            f"/admin/credentials/{credential.id}/reject", data={"reason": "Forged."}
        )
        assert response.status_code == 422
        db.expire_all()
        assert db.get_one(Credential, credential.id).status is CredentialStatus.PENDING

    def test_the_api_still_refuses_form_posts(self, client: FlaskClient, admin: User) -> None:
        response = client.post(
            "/api/v1/auth/login", data={"email": admin.email, "password": PASSWORD}
        )
        assert response.status_code == 415

    def test_sign_out_ends_the_session(self, admin_pages: FlaskClient) -> None:
        response = post_form(admin_pages, "/admin/logout", "/admin/credentials")
        assert response.status_code == 302
        assert admin_pages.get("/admin/credentials").status_code == 302

    def test_a_form_posted_after_the_session_ended_is_not_replayed(
        self, client: FlaskClient, db: Session
    ) -> None:
        credential = pending_credential(db)
        response = client.post(f"/admin/credentials/{credential.id}/reject", data={"reason": "x"})
        assert response.status_code == 302
        assert response.headers["Location"] == "/admin/login"

    def test_errors_under_admin_are_pages_and_elsewhere_json(
        self, admin_pages: FlaskClient
    ) -> None:
        missing = admin_pages.get("/admin/no-such-page")
        assert (missing.status_code, missing.mimetype) == (404, "text/html")
        wrong_method = admin_pages.delete("/admin/credentials")
        assert (wrong_method.status_code, wrong_method.mimetype) == (405, "text/html")
        api = admin_pages.get("/api/v1/no-such-endpoint")
        assert (api.status_code, api.mimetype) == (404, "application/json")

    def test_pages_carry_a_strict_content_security_policy(self, admin_pages: FlaskClient) -> None:
        policy = admin_pages.get("/admin/credentials").headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # default-src 'none': no scripts at all


class TestCredentials:
    def test_the_queue_is_oldest_first(self, admin_pages: FlaskClient, db: Session) -> None:
        first = pending_credential(db)
        second = pending_credential(db)
        second.submitted_at = first.submitted_at + timedelta(seconds=1)
        first.practitioner.user.full_name = "Ada First"
        second.practitioner.user.full_name = "Bea Second"
        db.flush()
        page = text(admin_pages.get("/admin/credentials"))
        assert page.index("Ada First") < page.index("Bea Second")
        assert first.number in page

    def test_an_approval_without_its_fields_shows_the_errors_next_to_them(
        self, admin_pages: FlaskClient, db: Session
    ) -> None:
        credential = pending_credential(db)
        page = f"/admin/credentials/{credential.id}"
        response = post_form(admin_pages, f"{page}/approve", page, expires_on="", register_check="")
        assert response.status_code == 422
        html = text(response)
        for field in ("expires_on", "register_check"):
            assert re.search(rf'<ul class="errors" id="{field}-error">\s*<li>', html), field
            assert f'aria-describedby="{field}-hint {field}-error"' in html
        db.expire_all()
        assert db.get_one(Credential, credential.id).status is CredentialStatus.PENDING

    def test_approving_lists_the_practitioner(self, admin_pages: FlaskClient, db: Session) -> None:
        credential = pending_credential(db)
        page = f"/admin/credentials/{credential.id}"
        assert "hcpc-uk.org/check-the-register" in text(admin_pages.get(page))
        response = post_form(
            admin_pages,
            f"{page}/approve",
            page,
            expires_on=NEXT_YEAR,
            register_check="Registered, no conditions.",
        )
        assert response.status_code == 302
        assert "credential verified" in text(admin_pages.get(response.headers["Location"]))
        db.expire_all()
        assert db.get_one(Practitioner, credential.practitioner_id).status is ListingStatus.LISTED

    def test_a_rejection_needs_a_reason(self, admin_pages: FlaskClient, db: Session) -> None:
        credential = pending_credential(db)
        page = f"/admin/credentials/{credential.id}"
        missing = post_form(admin_pages, f"{page}/reject", page, reason="  ")
        assert missing.status_code == 422
        assert "Give a reason." in text(missing)
        done = post_form(admin_pages, f"{page}/reject", page, reason="Number not on the register.")
        assert done.status_code == 302
        db.expire_all()
        rejected = db.get_one(Credential, credential.id)
        assert rejected.status is CredentialStatus.REJECTED
        assert rejected.decision_reason == "Number not on the register."

    def test_a_decided_credential_cannot_be_decided_again(
        self, admin_pages: FlaskClient, db: Session
    ) -> None:
        credential = pending_credential(db)
        page = f"/admin/credentials/{credential.id}"
        token = csrf_token(admin_pages, page)
        assert (
            admin_pages.post(
                f"{page}/reject", data={"csrf_token": token, "reason": "No."}
            ).status_code
            == 302
        )
        again = admin_pages.post(f"{page}/reject", data={"csrf_token": token, "reason": "No."})
        assert again.status_code == 409
        assert "already been decided" in text(again) or "not pending" in text(again).lower()

    def test_evidence_is_previewed_inline_downloaded_on_request_and_every_view_audited(
        self, admin_pages: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        credential = pending_credential(db)
        user = credential.practitioner.user
        pdf = io.BytesIO(pdf_file())
        store = evidence_backend.store
        evidence = practitioners.add_evidence(db, user, credential.id, pdf, store)
        page = f"/admin/credentials/{credential.id}"
        url = f"{page}/evidence/{evidence.id}"
        assert f'<iframe src="{url}"' in text(admin_pages.get(page))
        inline = admin_pages.get(url)
        assert inline.status_code == 200
        assert inline.headers["Content-Disposition"].startswith("inline")
        assert inline.headers["Content-Security-Policy"].startswith("sandbox;")
        assert inline.data == pdf.getvalue()
        download = admin_pages.get(f"{url}?download=1")
        assert download.headers["Content-Disposition"].startswith("attachment")
        views = db.scalars(select(AuditEntry).where(AuditEntry.action == "evidence.viewed")).all()
        assert len(views) == 2

    def test_a_pdf_is_previewed_in_a_frame_its_own_answer_sandboxes(
        self, admin_pages: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        credential = pending_credential(db)
        user, pdf = credential.practitioner.user, io.BytesIO(pdf_file())
        evidence = practitioners.add_evidence(db, user, credential.id, pdf, evidence_backend.store)
        page = text(admin_pages.get(f"/admin/credentials/{credential.id}"))
        url = f"/admin/credentials/{credential.id}/evidence/{evidence.id}"
        (frame,) = re.findall(r"<iframe[^>]*>", page)
        assert f'src="{url}"' in frame
        assert "allow-" not in frame  # nothing loosens the file's own sandbox
        framed = admin_pages.get(url)
        policy = [part.strip() for part in framed.headers["Content-Security-Policy"].split(";")]
        assert policy[0] == "sandbox"  # no allow-scripts, no allow-same-origin: opaque, inert
        assert f'href="{url}" target="_blank" rel="noopener noreferrer"' in page

    def test_evidence_is_served_sandboxed_unsniffed_and_framed_by_the_back_office_only(
        self, admin_pages: FlaskClient, db: Session, evidence_backend: Backend
    ) -> None:
        credential = pending_credential(db)
        user, png = credential.practitioner.user, io.BytesIO(png_file())
        evidence = practitioners.add_evidence(db, user, credential.id, png, evidence_backend.store)
        url = f"/admin/credentials/{credential.id}/evidence/{evidence.id}"
        for response in (admin_pages.get(url), admin_pages.get(f"{url}?download=1")):
            assert response.status_code == 200
            assert_sandboxed(response, frame_ancestors="'self'")
            assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
            assert response.mimetype == "image/png"

    def test_an_unknown_credential_is_a_404_page(self, admin_pages: FlaskClient) -> None:
        response = admin_pages.get(f"/admin/credentials/{uuid.uuid4()}")
        assert response.status_code == 404
        assert response.mimetype == "text/html"


class TestPractitioners:
    def test_suspend_needs_a_reason_then_delists_and_reinstate_lists_again(
        self, admin_pages: FlaskClient, db: Session
    ) -> None:
        practitioner = make_practitioner(db)
        listing = "/admin/practitioners?status=listed"
        path = f"/admin/practitioners/{practitioner.id}"
        missing = post_form(admin_pages, f"{path}/suspend?status=listed", listing, reason="")
        assert missing.status_code == 422
        assert re.search(r'id="reason-error">\s*<li>Give a reason.', text(missing))
        done = post_form(
            admin_pages, f"{path}/suspend?status=listed", listing, reason="Complaint under review."
        )
        assert done.status_code == 302
        assert done.headers["Location"] == listing  # back to the same filtered list
        db.expire_all()
        assert db.get_one(Practitioner, practitioner.id).status is not ListingStatus.LISTED
        suspended = text(admin_pages.get("/admin/practitioners?suspended=yes"))
        assert "Complaint under review." in suspended
        back = post_form(admin_pages, f"{path}/reinstate", listing, reason="Cleared.")
        assert back.status_code == 302
        db.expire_all()
        assert db.get_one(Practitioner, practitioner.id).status is ListingStatus.LISTED

    def test_an_unknown_filter_is_a_clear_422(self, admin_pages: FlaskClient) -> None:
        response = admin_pages.get("/admin/practitioners?status=famous")
        assert response.status_code == 422
        assert "Some fields are invalid." in text(response) or "famous" in text(response)


class TestNotificationsAndAudit:
    def test_a_failed_notification_is_listed_and_retried(
        self, admin_pages: FlaskClient, db: Session
    ) -> None:
        user = make_user(db)
        notification_id = queue_notification(
            db,
            user_id=user.id,
            template="practitioner_reinstated",
            subject_type="practitioner",
            subject_id=uuid.uuid4(),
            dedupe_key=f"test:{uuid.uuid4()}",
        )
        failed = db.get_one(Notification, notification_id)
        failed.status, failed.attempts = NotificationStatus.FAILED, 5
        failed.last_error = "SMTPConnectError: refused"
        db.flush()
        page = text(admin_pages.get("/admin/notifications"))
        assert "SMTPConnectError: refused" in page
        response = post_form(
            admin_pages, f"/admin/notifications/{notification_id}/retry", "/admin/notifications"
        )
        assert response.status_code == 302
        db.expire_all()
        assert db.get_one(Notification, notification_id).status is NotificationStatus.PENDING
        assert db.scalars(
            select(AuditEntry.action).where(AuditEntry.subject_id == notification_id)
        ).all() == ["notification.retry"]

    def test_the_audit_log_filters_by_action_and_subject(
        self, admin_pages: FlaskClient, db: Session
    ) -> None:
        practitioner = make_practitioner(db)
        page = text(admin_pages.get("/admin/audit?action=credential.approved"))
        assert "credential.approved" in page
        assert "practitioner.listed" not in page
        by_subject = text(admin_pages.get(f"/admin/audit?subject_id={practitioner.id}"))
        assert "practitioner.listed" in by_subject
        assert "credential.approved" not in by_subject
        assert admin_pages.get("/admin/audit?subject_id=nope").status_code == 422
