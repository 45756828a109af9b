"""The app behind the real gunicorn, with the project's gunicorn.conf.py: requests at the edges of
the limits (a long URL, a big header, a chunked body over MAX_CONTENT_LENGTH) are answered in the
JSON error envelope, not gunicorn's HTML, and the access log holds no client address.

gunicorn runs on a free loopback port on a SQLite database in a temporary folder; requests are
written byte by byte on a socket, so nothing in between tidies them."""

from __future__ import annotations

import json
import runpy
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from marketplace import migrate
from marketplace.http_guards import MAX_HEADER_BYTES, MAX_HEADER_FIELDS, MAX_URL_BYTES
from tests.support.gunicorn import CONFIG, serving

MAX_CONTENT_LENGTH = 1024 * 1024  # the default


@dataclass
class Gunicorn:
    port: int
    log: Path

    def send(self, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        """One request as written; the status, headers (lower-case names) and body."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as connection:
            connection.sendall(head + body)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        status_line, _, rest = answer.partition(b"\r\n")
        header_block, _, content = rest.partition(b"\r\n\r\n")
        headers = {}
        for line in header_block.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers, content


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    folder = tmp_path_factory.mktemp("gunicorn")
    url = f"sqlite:///{folder / 'marketplace.db'}"
    migrate.upgrade(url)

    def answers(port: int) -> bool:
        Gunicorn(port, folder).send(head("/api/v1/specialties"))
        return True

    with serving(folder, url, workers=1, threads=2, ready=answers) as (port, log_path):
        yield Gunicorn(port, log_path)


def envelope(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers.get("content-type") == "application/json", (status, headers, body[:300])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "details"}
    assert headers["x-content-type-options"] == "nosniff"
    return dict(error)


def head(target: str, *extra: str, method: str = "GET") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: t", "Connection: close", *extra, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def test_a_5_kb_url_is_414_in_the_envelope(gunicorn: Gunicorn) -> None:
    status, headers, body = gunicorn.send(head("/api/v1/practitioners?q=" + "a" * 5 * 1024))
    assert status == 414
    assert envelope(status, headers, body)["code"] == "uri_too_long"


def test_a_20_kb_header_is_431_in_the_envelope(gunicorn: Gunicorn) -> None:
    status, headers, body = gunicorn.send(head("/api/v1/specialties", "X-Big: " + "b" * 20 * 1024))
    assert status == 431
    assert envelope(status, headers, body)["code"] == "header_fields_too_large"


def test_too_many_header_fields_are_431_in_the_envelope(gunicorn: Gunicorn) -> None:
    fields = [f"X-Field-{n}: {n}" for n in range(MAX_HEADER_FIELDS + 1)]
    status, headers, body = gunicorn.send(head("/api/v1/specialties", *fields))
    assert status == 431
    assert envelope(status, headers, body)["code"] == "header_fields_too_large"


def chunked(body: bytes) -> bytes:
    return f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"


def test_a_chunked_body_over_the_limit_is_413_in_the_envelope(gunicorn: Gunicorn) -> None:
    body = b'{"email": "' + b"a" * MAX_CONTENT_LENGTH + b'", "password": "x"}'
    status, headers, content = gunicorn.send(
        head(
            "/api/v1/auth/login",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
            method="POST",
        ),
        chunked(body),
    )
    assert status == 413
    assert envelope(status, headers, content)["code"] == "payload_too_large"


def test_a_chunked_body_within_the_limit_is_read_whole(gunicorn: Gunicorn) -> None:
    body = b'{"email": "nobody@example.org", "password": "' + b"p" * 100 + b'"}'
    status, headers, content = gunicorn.send(
        head(
            "/api/v1/auth/login",
            "Content-Type: application/json",
            "Transfer-Encoding: chunked",
            method="POST",
        ),
        chunked(body),
    )
    assert status == 401
    assert envelope(status, headers, content)["code"] == "invalid_credentials"


def test_gunicorn_lets_through_what_the_app_refuses() -> None:
    settings = runpy.run_path(str(CONFIG))
    request_line_overhead = len("OPTIONS  HTTP/1.1")
    assert settings["limit_request_line"] - request_line_overhead > MAX_URL_BYTES
    assert settings["limit_request_field_size"] > MAX_HEADER_BYTES
    assert settings["limit_request_fields"] > MAX_HEADER_FIELDS


def test_the_access_log_format_has_no_client_address() -> None:
    log_format = runpy.run_path(str(CONFIG))["access_log_format"]
    assert "%(h)s" not in log_format
    assert "%(r)s" not in log_format  # the request line carries the query string
    assert "%(q)s" not in log_format


def test_access_and_error_logs_hold_no_client_address(gunicorn: Gunicorn) -> None:
    request_id = "edge-test-request-0001"
    status, _, _ = gunicorn.send(
        head("/api/v1/specialties?patient_id=query-secret", f"X-Request-ID: {request_id}")
    )
    assert status == 200
    # Past gunicorn's own limit: gunicorn answers, and warns in its error log.
    status, _, _ = gunicorn.send(head("/" + "a" * 9000))
    assert status == 414
    deadline = time.monotonic() + 5
    while request_id not in gunicorn.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = gunicorn.log.read_text()
    (access,) = [line for line in log.splitlines() if request_id in line]
    assert '"GET /api/v1/specialties" 200' in access
    assert "Invalid request" in log
    assert "query-secret" not in log
    client_lines = [line for line in log.splitlines() if "Listening at: http" not in line]
    assert [line for line in client_lines if "127.0.0.1" in line] == []
