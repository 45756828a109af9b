"""docs/api.md is the HTTP contract of record: it must stay true to the OpenAPI document.

Every operation of the OpenAPI document has a row in one of its tables (with the same
`operationId`), and every row names an operation the document describes, or one of the few
routes the app serves outside it (health check and the API docs themselves).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
METHODS = ("get", "put", "post", "patch", "delete")
# Served by the app, documented in docs/api.md, but not operations of the OpenAPI document.
OUTSIDE_OPENAPI = {
    ("GET", "/healthz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/docs"),
}
ROW = re.compile(
    r"^\|\s*`(?P<method>GET|PUT|POST|PATCH|DELETE) (?P<path>/[^`\s]*)`\s*\|"
    r"\s*(?P<operation_id>[^|]*?)\s*\|"
)

Operation = tuple[str, str]  # (METHOD, path with every parameter written `{}`)


def normalised(path: str) -> str:
    """`/bookings/{booking_id}` and `/bookings/{id}` are the same path; so is Flask's
    `<uuid:booking_id>`."""
    return re.sub(r"<[^>]+>", "{}", re.sub(r"\{[^}]*\}", "{}", path))


def documented_rows(text: str) -> dict[Operation, str]:
    """(method, path) of each table row in the doc, with the operationId it names."""
    rows: dict[Operation, str] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match is None:
            continue
        key = (match["method"], normalised(match["path"]))
        assert key not in rows, f"docs/api.md has two rows for {key}"
        rows[key] = match["operation_id"].strip("` ")
    return rows


def openapi_operations(spec: dict[str, Any]) -> dict[Operation, str]:
    return {
        (method.upper(), normalised(path)): operation["operationId"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def spec(app: Flask) -> dict[str, Any]:
    client: FlaskClient = app.test_client()
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.get_json()
    return spec


@pytest.fixture(scope="module")
def rows() -> dict[Operation, str]:
    return documented_rows(DOC.read_text(encoding="utf-8"))


def test_every_openapi_operation_has_a_row(
    spec: dict[str, Any], rows: dict[Operation, str]
) -> None:
    missing = sorted(set(openapi_operations(spec)) - set(rows))
    assert not missing, f"operations without a row in docs/api.md: {missing}"


def test_every_row_is_an_operation_the_app_serves(
    app: Flask, spec: dict[str, Any], rows: dict[Operation, str]
) -> None:
    operations = set(openapi_operations(spec))
    unknown = sorted(set(rows) - operations - OUTSIDE_OPENAPI)
    assert not unknown, f"rows in docs/api.md the OpenAPI document does not describe: {unknown}"
    served = {
        (method, normalised(rule.rule))
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
    }
    assert set(rows) >= OUTSIDE_OPENAPI
    assert served >= OUTSIDE_OPENAPI
    assert not OUTSIDE_OPENAPI & operations, "now in the OpenAPI document: drop it from the set"


def test_rows_name_the_operation_ids(spec: dict[str, Any], rows: dict[Operation, str]) -> None:
    wrong = {
        operation: (rows[operation], operation_id)
        for operation, operation_id in openapi_operations(spec).items()
        if operation in rows and rows[operation] != operation_id
    }
    assert not wrong, f"docs/api.md operationId (doc, OpenAPI) disagree: {wrong}"


def test_a_deleted_row_is_noticed(spec: dict[str, Any]) -> None:
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `GET /api/v1/me` |"))
    rows = documented_rows(text.replace(row + "\n", ""))
    assert ("GET", "/api/v1/me") in set(openapi_operations(spec)) - set(rows)


def test_parameters_match_whatever_their_names() -> None:
    assert normalised("/api/v1/bookings/{id}/cancel") == normalised(
        "/api/v1/bookings/{booking_id}/cancel"
    )
    assert normalised("/api/v1/bookings/<uuid:booking_id>") == "/api/v1/bookings/{}"
