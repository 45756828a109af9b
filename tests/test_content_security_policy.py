"""Every HTML answer of the app (back-office pages, their error pages and redirects, the API
docs) carries a Content-Security-Policy that allows script from this origin at most, no plugins,
no <base> and no framing by other sites. Found by walking the URL map as a signed-in admin."""

from __future__ import annotations

import uuid

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from marketplace.accounts.models import Role
from tests.support.accounts import log_in_as
from tests.support.factories import make_practitioner, make_user

# Where a directive is missing, the browser uses default-src (not for base-uri, frame-ancestors
# or form-action, which do not fall back).
FALLS_BACK = {"script-src", "object-src", "style-src", "img-src", "frame-src", "connect-src"}


def directives(policy: str) -> dict[str, set[str]]:
    parsed: dict[str, set[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name.lower()] = set(sources)
    return parsed


def effective(parsed: dict[str, set[str]], name: str) -> set[str] | None:
    if name in parsed:
        return parsed[name]
    return parsed.get("default-src") if name in FALLS_BACK else None


def assert_strict(policy: str, where: str) -> None:
    parsed = directives(policy)
    default = effective(parsed, "default-src")
    assert default is not None, (where, policy)
    assert default <= {"'self'", "'none'"}, (where, policy)
    assert effective(parsed, "script-src") in ({"'self'"}, {"'none'"}), (where, policy)
    assert effective(parsed, "object-src") == {"'none'"}, (where, policy)
    assert effective(parsed, "base-uri") == {"'none'"}, (where, policy)
    assert effective(parsed, "frame-ancestors") == {"'none'"}, (where, policy)


def test_every_html_answer_has_a_strict_policy(
    app: Flask, client: FlaskClient, db: Session
) -> None:
    admin = make_user(db, Role.ADMIN)
    practitioner = make_practitioner(db, verified=False)
    (credential,) = practitioner.credentials
    ids = {
        "credential_id": credential.id,
        "practitioner_id": practitioner.id,
        "filename": "swagger-ui.css",
        "change": "suspend",
    }
    log_in_as(client, admin.email)
    urls = app.url_map.bind("localhost")
    html = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()):
            continue
        values = {name: ids.get(name, uuid.uuid4()) for name in rule.arguments}
        url = urls.build(rule.endpoint, values)
        response = client.get(url)
        if response.mimetype == "text/html":
            html.append(url)
            assert_strict(response.headers.get("Content-Security-Policy", ""), url)
    # The pages themselves, and error pages and redirects of the back office.
    for url in ("/admin/no-such-page", "/admin/credentials/not-an-id", "/admin"):
        response = client.get(url)
        assert response.mimetype == "text/html", url
        html.append(url)
        assert_strict(response.headers.get("Content-Security-Policy", ""), url)
    assert "/api/docs" in html
    assert "/admin/" in html
    assert f"/admin/credentials/{credential.id}" in html


def test_signed_out_pages_have_it_too(client: FlaskClient) -> None:
    for url in ("/admin/", "/admin/login", "/admin/no-such-page"):
        response = client.get(url)
        assert response.mimetype == "text/html", url
        assert_strict(response.headers.get("Content-Security-Policy", ""), url)
