"""The back office (and the API docs) in a real browser: Playwright drives Debian's Chromium
(headless) against the app served on loopback, on its own database of the kind under test.

Screenshots of the queue and of a credential page are saved in test-artifacts/ (or
$TEST_ARTIFACTS)."""

from __future__ import annotations

import io
import os
import shutil
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from marketplace import create_app, migrate
from marketplace.accounts.models import Role
from marketplace.clock import business_today
from marketplace.db import get_database
from marketplace.geo.geocoding import load_builtin_london_outcodes
from marketplace.practitioners import service as practitioners
from tests.support.accounts import PASSWORD
from tests.support.database import app_config, fresh_database_url
from tests.support.factories import make_practitioner, make_user
from tests.support.services import IN_CI

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "test-artifacts"))
ADMIN_EMAIL = "admin@example.org"

pytestmark = pytest.mark.browser


def png(width: int = 240, height: int = 120) -> bytes:
    """A small valid PNG (a pale certificate-coloured block), made without an image library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes((235, 228, 200)) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI=true but Chromium is missing at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield launched
        launched.close()


class Served:
    def __init__(self, app: Flask, url: str, people: dict[str, Any]) -> None:
        self.app, self.url, self.people = app, url, people


def seed(app: Flask) -> dict[str, Any]:
    """An admin, two practitioners waiting in the queue (one with an image as evidence) and
    a patient."""
    today = business_today()
    with app.app_context(), get_database(app).session_scope() as session:
        load_builtin_london_outcodes(session)
        make_user(session, Role.ADMIN, ADMIN_EMAIL).full_name = "Ada Admin"
        patient = make_user(session, Role.PATIENT, "patient@example.org")
        first = make_practitioner(session, verified=False, today=today)
        second = make_practitioner(session, verified=False, today=today)
        first.user.full_name, second.user.full_name = "Priya Physio", "Rory Rejected"
        (credential,) = first.credentials
        credential.submitted_at -= timedelta(minutes=5)  # first in the queue
        practitioners.add_evidence(
            session, first.user, credential.id, io.BytesIO(png()), app.extensions["evidence_store"]
        )
        return {"first": first.id, "second": second.id, "patient": patient.email}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("browser")
    url = fresh_database_url(folder, "marketplace_browser")
    migrate.upgrade(url)
    app = create_app(app_config(url) | {"EVIDENCE_DIR": str(folder / "evidence")})
    people = seed(app)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(app, f"http://127.0.0.1:{server.server_port}", people)
    finally:
        server.shutdown()
        get_database(app).engine.dispose()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def wait_until_loaded(image: Any, seconds: float = 15) -> None:
    """Until the image has really loaded. Not `wait_for_function`: it polls by evaluating a
    string, which the pages' CSP (no 'unsafe-eval') refuses whenever the first look fails."""
    deadline = time.monotonic() + seconds
    while not image.evaluate("img => img.complete && img.naturalWidth > 0"):
        assert time.monotonic() < deadline, "the image never loaded"
        time.sleep(0.1)


def sign_in(page: Any, served: Served, email: str) -> None:
    page.goto(f"{served.url}/admin")
    assert page.url.startswith(f"{served.url}/admin/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_admin_approves_one_credential_and_rejects_another(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    sign_in(page, served, ADMIN_EMAIL)
    expect(page.get_by_role("heading", name="Verification queue")).to_be_visible()
    rows = page.locator("tbody tr")
    expect(rows.first).to_contain_text("Priya Physio")
    expect(rows.nth(1)).to_contain_text("Rory Rejected")
    screenshot(page, "admin-queue.png")

    page.get_by_role("link", name="Priya Physio").click()
    expect(page.get_by_role("link", name="on the HCPC register")).to_be_visible()
    expect(page.get_by_alt_text("Evidence file 1")).to_be_visible()
    wait_until_loaded(page.locator("figure.evidence img"))
    screenshot(page, "admin-credential.png")
    page.get_by_role("button", name="Approve").click()  # empty: the errors come back
    expect(page.locator("#expires_on-error")).to_be_visible()
    expect(page.locator("#register_check-error")).to_be_visible()
    expires = (business_today() + timedelta(days=400)).isoformat()
    page.get_by_label("Registration valid until").fill(expires)
    page.get_by_label("What the register showed").fill("Registered physiotherapist, no conditions.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_contain_text("Priya Physio: credential verified")

    page.get_by_role("link", name="Rory Rejected").click()
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("#reason-error")).to_contain_text("Give a reason.")
    reason = page.get_by_label("Reason, shown to the practitioner")
    reason.fill("The number is not on the register.")
    page.get_by_role("button", name="Reject").click()
    expect(page.get_by_role("status")).to_contain_text("Rory Rejected: credential rejected")
    expect(page.get_by_text("No pending credentials.")).to_be_visible()

    api = served.app.test_client()
    listed = api.get(f"/api/v1/practitioners/{served.people['first']}")
    assert listed.status_code == 200, listed.get_json()
    assert api.get(f"/api/v1/practitioners/{served.people['second']}").status_code == 404


def test_patients_are_refused_at_the_back_office(page: Any, served: Served) -> None:
    from playwright.sync_api import expect

    sign_in(page, served, served.people["patient"])
    # The same answer as a wrong password: the sign-in tells nobody who is not an admin.
    expect(page.get_by_role("alert")).to_contain_text("The email or password is wrong.")
    assert page.url.startswith(f"{served.url}/admin/login")

    # Signed in through the API (the app's own cookie), the pages still refuse them.
    response = page.request.post(
        f"{served.url}/api/v1/auth/login",
        data={"email": served.people["patient"], "password": PASSWORD},
    )
    assert response.ok
    answer = page.goto(f"{served.url}/admin/credentials")
    assert answer.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_api_docs_render_from_the_app_alone(page: Any, served: Served) -> None:
    """Swagger UI runs under the page's script-src 'self' and asks no other origin for
    anything (a CSP violation shows in the console)."""
    from playwright.sync_api import expect

    requested: list[str] = []
    complaints: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    def complain(message: Any) -> None:
        if message.type == "error":
            complaints.append(message.text)

    page.on("console", complain)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    page.goto(f"{served.url}/api/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    page.locator(".opblock-summary").first.click()
    expect(page.get_by_role("button", name="Try it out")).to_be_visible()
    screenshot(page, "api-docs.png")
    assert complaints == []
    assert requested
    assert all(url.startswith(f"{served.url}/") for url in requested), requested


def test_chromium_is_debian_s(browser: Any) -> None:
    """The browser is the system's, not one downloaded by Playwright."""
    assert shutil.which("chromium") or Path(CHROMIUM).exists()
    assert browser.version
