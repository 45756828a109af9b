"""Request and response shapes of the admin endpoints."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import validate

from marketplace.admin.service import Decision
from marketplace.notifications.models import Channel, NotificationStatus
from marketplace.pagination import PageQuerySchema
from marketplace.practitioners.models import CredentialStatus, ListingStatus, Profession
from marketplace.practitioners.schemas import CredentialSchema
from marketplace.schemas import StrictSchema, TrimmedString, list_schema


class CredentialQueueQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(CredentialStatus, by_value=True, load_default=CredentialStatus.PENDING)


class PractitionerSummarySchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    user_id = ma.fields.UUID(required=True)
    full_name = ma.fields.String(attribute="user.full_name", required=True)
    email = ma.fields.String(attribute="user.email", required=True)
    profession = ma.fields.Enum(Profession, by_value=True, required=True)
    status = ma.fields.Enum(ListingStatus, by_value=True, required=True)
    status_reason = ma.fields.String(allow_none=True)
    suspension_reason = ma.fields.String(allow_none=True)


class AdminCredentialSchema(CredentialSchema):
    practitioner = ma.fields.Nested(PractitionerSummarySchema, required=True)
    register_check = ma.fields.String(allow_none=True)
    decided_by_id = ma.fields.UUID(allow_none=True)


AdminCredentialListSchema = list_schema(AdminCredentialSchema, "AdminCredentialList")


class DecisionSchema(StrictSchema):
    decision = ma.fields.Enum(Decision, by_value=True, required=True)
    reason = TrimmedString(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    expires_on = ma.fields.Date(load_default=None, allow_none=True)
    register_check = TrimmedString(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=2000),
        metadata={"description": "What the HCPC register or certificate check showed"},
    )


class ReasonSchema(StrictSchema):
    reason = TrimmedString(required=True, validate=validate.Length(min=1, max=2000))


class AuditQuerySchema(PageQuerySchema):
    subject_type = ma.fields.String(load_default=None, validate=validate.Length(max=40))
    subject_id = ma.fields.UUID(load_default=None)


class AuditEntrySchema(ma.Schema):
    at = ma.fields.AwareDateTime(required=True)
    actor_id = ma.fields.UUID(allow_none=True)
    action = ma.fields.String(required=True)
    subject_type = ma.fields.String(required=True)
    subject_id = ma.fields.UUID(required=True)
    details = ma.fields.Dict(required=True)


AuditListSchema = list_schema(AuditEntrySchema, "AuditList")


class NotificationQuerySchema(PageQuerySchema):
    status = ma.fields.Enum(NotificationStatus, by_value=True, load_default=None)


class NotificationSchema(ma.Schema):
    id = ma.fields.UUID(required=True)
    user_id = ma.fields.UUID(required=True)
    channel = ma.fields.Enum(Channel, by_value=True, required=True)
    template = ma.fields.String(required=True)
    subject_type = ma.fields.String(required=True)
    subject_id = ma.fields.UUID(required=True)
    status = ma.fields.Enum(NotificationStatus, by_value=True, required=True)
    attempts = ma.fields.Integer(required=True)
    last_error = ma.fields.String(allow_none=True)
    dropped_reason = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime(required=True)
    due_at = ma.fields.AwareDateTime(required=True)
    sent_at = ma.fields.AwareDateTime(allow_none=True)


NotificationListSchema = list_schema(NotificationSchema, "NotificationList")
