"""Admin endpoints: the verification queue, decisions, suspension, evidence, the audit log,
notifications that failed."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response

from marketplace.accounts.auth import authenticated, current_account
from marketplace.accounts.models import Role
from marketplace.admin import service
from marketplace.admin.schemas import (
    AdminCredentialListSchema,
    AdminCredentialSchema,
    AuditListSchema,
    AuditQuerySchema,
    CredentialQueueQuerySchema,
    DecisionSchema,
    NotificationListSchema,
    NotificationQuerySchema,
    NotificationSchema,
    PractitionerSummarySchema,
    ReasonSchema,
)
from marketplace.audit import service as audit
from marketplace.clock import business_today
from marketplace.db import request_session
from marketplace.errors import ErrorSchema
from marketplace.notifications import service as notifications
from marketplace.notifications.models import Notification
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.evidence_download import send_evidence
from marketplace.practitioners.models import Credential, Practitioner
from marketplace.schemas import ApiBlueprint

blp = ApiBlueprint("admin", __name__, url_prefix="/api/v1/admin", description="Admin back office")


@blp.route("/credentials", methods=["GET"])
@authenticated(Role.ADMIN)
@blp.arguments(CredentialQueueQuerySchema, location="query")
@blp.response(200, AdminCredentialListSchema)
def list_credential_queue(query: dict[str, Any]) -> Any:
    """Credentials by status (default pending), oldest first, with their evidence."""
    return service.credentials_queue(
        request_session(), query["status"], query["limit"], query["cursor"]
    )


@blp.route("/credentials/<uuid:credential_id>/decision", methods=["POST"])
@authenticated(Role.ADMIN)
@blp.arguments(DecisionSchema)
@blp.response(200, AdminCredentialSchema)
@blp.alt_response(409, schema=ErrorSchema, description="Already decided")
def decide_credential(body: dict[str, Any], credential_id: uuid.UUID) -> Credential:
    """Approve (register check and expiry date) or reject (reason) a pending credential."""
    return service.decide_credential(
        request_session(), current_account(), credential_id, today=business_today(), **body
    )


@blp.route("/credentials/<uuid:credential_id>/evidence/<uuid:evidence_id>", methods=["GET"])
@authenticated(Role.ADMIN)
@blp.response(200, content_type="application/octet-stream")
@blp.alt_response(503, schema=ErrorSchema, description="`storage_unavailable`")
def download_credential_evidence(credential_id: uuid.UUID, evidence_id: uuid.UUID) -> Response:
    """Download a credential's evidence (each read is audited)."""
    found = practitioners.open_evidence(
        request_session(), current_account(), credential_id, evidence_id
    )
    return send_evidence(found)


@blp.route("/practitioners/<uuid:practitioner_id>/suspend", methods=["POST"])
@authenticated(Role.ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PractitionerSummarySchema)
def suspend_practitioner(body: dict[str, Any], practitioner_id: uuid.UUID) -> Practitioner:
    """Suspend a practitioner: delisted at once."""
    return service.suspend_practitioner(
        request_session(), current_account(), practitioner_id, body["reason"], business_today()
    )


@blp.route("/practitioners/<uuid:practitioner_id>/reinstate", methods=["POST"])
@authenticated(Role.ADMIN)
@blp.arguments(ReasonSchema)
@blp.response(200, PractitionerSummarySchema)
def reinstate_practitioner(body: dict[str, Any], practitioner_id: uuid.UUID) -> Practitioner:
    """Lift a suspension; listed again if the listing rule allows."""
    return service.reinstate_practitioner(
        request_session(), current_account(), practitioner_id, body["reason"], business_today()
    )


@blp.route("/audit", methods=["GET"])
@authenticated(Role.ADMIN)
@blp.arguments(AuditQuerySchema, location="query")
@blp.response(200, AuditListSchema)
def list_audit_log(query: dict[str, Any]) -> Any:
    """The audit log, newest first, optionally for one subject."""
    return audit.audit_entries(
        request_session(),
        subject_type=query["subject_type"],
        subject_id=query["subject_id"],
        limit=query["limit"],
        cursor=query["cursor"],
    )


@blp.route("/notifications", methods=["GET"])
@authenticated(Role.ADMIN)
@blp.arguments(NotificationQuerySchema, location="query")
@blp.response(200, NotificationListSchema)
def list_notifications(query: dict[str, Any]) -> Any:
    """Outbox messages, oldest first, by status (`failed` shows those that need an admin)."""
    return notifications.notifications_with_status(
        request_session(), query["status"], query["limit"], query["cursor"]
    )


@blp.route("/notifications/<uuid:notification_id>/retry", methods=["POST"])
@authenticated(Role.ADMIN)
@blp.response(200, NotificationSchema)
@blp.alt_response(409, schema=ErrorSchema, description="`not_failed`: only failed ones")
def retry_notification(notification_id: uuid.UUID) -> Notification:
    """Send a failed message again, with a fresh set of attempts."""
    return service.retry_notification(request_session(), current_account(), notification_id)
