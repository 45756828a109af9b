"""The listing rule under every status, lapses with a moved clock, and expiry warnings."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from marketplace.admin import service as admin
from marketplace.audit.models import AuditEntry
from marketplace.notifications.models import Notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.lapses import check_credential_lapses, warning_threshold
from marketplace.practitioners.listing import evaluate_listing, get_listed_practitioner
from marketplace.practitioners.models import CredentialStatus, ListingStatus, Practitioner
from tests.support.factories import approve, make_practitioner, make_user, nmt_fields

TODAY = date(2027, 1, 10)


def is_listed(db: Session, practitioner: Practitioner, today: date = TODAY) -> bool:
    try:
        get_listed_practitioner(db, practitioner.id, today)
    except Exception:
        return False
    return True


class TestListingRule:
    def test_verified_and_complete_is_listed(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY, expires_on=date(2028, 4, 30))
        assert practitioner.status is ListingStatus.LISTED
        assert practitioner.listed_until == date(2028, 4, 30)
        assert is_listed(db, practitioner)

    def test_unverified_is_pending_and_invisible(self, db: Session) -> None:
        practitioner = make_practitioner(db, verified=False, today=TODAY)
        assert practitioner.status is ListingStatus.PENDING
        assert practitioner.status_reason == "credential_missing"
        assert not is_listed(db, practitioner)

    def test_rejected_credential_does_not_list(self, db: Session) -> None:
        practitioner = make_practitioner(db, verified=False, today=TODAY)
        admin.decide_credential(
            db,
            make_user(db, Role.ADMIN),
            practitioner.credentials[0].id,
            decision=admin.Decision.REJECT,
            reason="Not on the register",
            expires_on=None,
            register_check=None,
            today=TODAY,
        )
        assert practitioner.status is ListingStatus.PENDING
        assert not is_listed(db, practitioner)

    def test_suspended_is_delisted(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY)
        admin.suspend_practitioner(
            db, make_user(db, Role.ADMIN), practitioner.id, "Complaint", TODAY
        )
        assert practitioner.status is ListingStatus.DELISTED
        assert practitioner.status_reason == "suspended"
        assert not is_listed(db, practitioner)

    def test_deactivated_account_is_delisted(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY)
        practitioner.user.is_active = False
        assert evaluate_listing(practitioner, TODAY).reason == "account_inactive"

    def test_incomplete_profile_is_not_listed(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY)
        practitioner.specialties = []
        decision = evaluate_listing(practitioner, TODAY)
        assert decision.status is ListingStatus.DELISTED
        assert decision.reason == "profile_incomplete"

    def test_the_wrong_kind_of_credential_does_not_list(self, db: Session) -> None:
        # A physiotherapist with only a verified NMT certificate is not listed.
        practitioner = make_practitioner(db, verified=False, today=TODAY)
        credential = practitioners.submit_credential(db, practitioner.user, nmt_fields(), TODAY)
        approve(db, credential, date(2030, 1, 1), TODAY)
        assert practitioner.status is ListingStatus.PENDING

    def test_nmt_therapist_is_listed_by_a_450_hour_certificate(self, db: Session) -> None:
        practitioner = make_practitioner(db, profession="neuromuscular_therapist", today=TODAY)
        assert practitioner.status is ListingStatus.LISTED

    def test_an_expired_credential_is_invisible_before_the_daily_task_runs(
        self, db: Session
    ) -> None:
        practitioner = make_practitioner(db, today=TODAY, expires_on=TODAY + timedelta(days=3))
        assert is_listed(db, practitioner, TODAY + timedelta(days=3))  # valid through that day
        assert not is_listed(db, practitioner, TODAY + timedelta(days=4))


class TestLapses:
    def test_expiry_delists_with_a_recorded_reason(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY, expires_on=TODAY + timedelta(days=40))
        assert check_credential_lapses(db, TODAY + timedelta(days=40)).delisted == 0
        later = TODAY + timedelta(days=41)
        report = check_credential_lapses(db, later)
        assert report.delisted == 1
        assert practitioner.status is ListingStatus.DELISTED
        assert practitioner.status_reason == "credential_expired"
        row = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "practitioner.delisted")
        ).one()
        assert row.actor_id is None
        assert row.details["reason"] == "credential_expired"
        assert db.scalars(
            select(Notification).where(Notification.template == "practitioner_delisted")
        ).one()
        assert check_credential_lapses(db, later).delisted == 0  # idempotent

    def test_reverification_lists_again(self, db: Session) -> None:
        practitioner = make_practitioner(db, today=TODAY, expires_on=TODAY + timedelta(days=1))
        later = TODAY + timedelta(days=5)
        check_credential_lapses(db, later)
        renewal = practitioners.submit_credential(
            db,
            practitioner.user,
            {"kind": "hcpc", "number": practitioner.credentials[0].number},
            later,
        )
        approve(db, renewal, date(2029, 4, 30), later)
        assert practitioner.status is ListingStatus.LISTED
        assert practitioner.credentials[0].status is CredentialStatus.SUPERSEDED

    @pytest.mark.parametrize(
        ("days_left", "threshold"), [(31, None), (30, 30), (8, 30), (7, 7), (0, 7)]
    )
    def test_thresholds(self, days_left: int, threshold: int | None) -> None:
        assert warning_threshold(days_left) == threshold

    def test_warnings_at_30_and_7_days_are_sent_once_each(self, db: Session) -> None:
        expiry = TODAY + timedelta(days=60)
        make_practitioner(db, today=TODAY, expires_on=expiry)
        warned_on = []
        for offset in range(0, 61):
            day = TODAY + timedelta(days=offset)
            if check_credential_lapses(db, day).warned:
                warned_on.append((expiry - day).days)
        assert warned_on == [30, 7]
        warnings = db.scalars(
            select(Notification).where(Notification.template == "credential_expiring")
        ).all()
        assert sorted(n.context["days_left"] for n in warnings) == [7, 30]

    def test_a_late_first_run_sends_only_the_most_urgent_warning(self, db: Session) -> None:
        make_practitioner(db, today=TODAY, expires_on=TODAY + timedelta(days=5))
        assert check_credential_lapses(db, TODAY).warned == 1
        assert check_credential_lapses(db, TODAY + timedelta(days=1)).warned == 0
