"""The back office's HTML pages as a browser without JavaScript uses them: forms carry a CSRF
token read from the page they are on."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.accounts import PASSWORD

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.data
    found = CSRF.search(page.get_data(as_text=True))
    assert found, "no CSRF token on the page"
    return found[1] or found[2]


def post_form(client: FlaskClient, path: str, form_page: str, **fields: Any) -> TestResponse:
    """Post `fields` to `path` with the CSRF token of the form on `form_page`."""
    return client.post(path, data={"csrf_token": csrf_token(client, form_page), **fields})


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> TestResponse:
    """Sign in to the back office through its sign-in form."""
    return post_form(client, "/admin/login", "/admin/login", email=email, password=password)
