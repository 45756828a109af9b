"""Links to the site's pages, for messages and files that leave it."""

from __future__ import annotations

import urllib.parse
import uuid

from flask import current_app


def public_url(path: str, **query: str) -> str:
    """A page of the site at PUBLIC_BASE_URL, to open signed in: links carry no login token."""
    url = f"{current_app.config['PUBLIC_BASE_URL']}{path}"
    return f"{url}?{urllib.parse.urlencode(query)}" if query else url


def visit_page(booking_id: uuid.UUID) -> str:
    """Where the patient's side and the practitioner see or change a visit."""
    return public_url(f"/visits/{booking_id}")
