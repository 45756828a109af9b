"""Message texts (Jinja templates under notifications/templates/). Never any health notes."""

from __future__ import annotations

from typing import Any

from flask import render_template

from marketplace.accounts.models import User

SUBJECTS = {
    "credential_approved": "Your credential is verified",
    "credential_rejected": "Your credential could not be verified",
    "credential_expiring": "Your credential expires soon",
    "practitioner_delisted": "Your profile is no longer listed",
    "practitioner_suspended": "Your profile has been suspended",
    "practitioner_reinstated": "Your profile has been reinstated",
    "booking_confirmed": "Your visit is booked",
    "booking_cancelled": "Your visit is cancelled",
    "booking_rescheduled": "Your visit has moved",
}


def render_message(template: str, recipient: User, context: dict[str, Any]) -> tuple[str, str]:
    body = render_template(f"email/{template}.txt", recipient=recipient, **context)
    return SUBJECTS[template], body
