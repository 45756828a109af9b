"""API fuzzing: schemathesis generates requests from the app's own OpenAPI document, valid and
invalid ones, in process, for every operation, as a patient, a practitioner and an admin. No
answer may be a 500, and every answer must match what the document says (status, content type,
body schema).

Bounded (FUZZ_EXAMPLES per operation, each sent as all three callers; default 25) to stay well
under five minutes; run on SQLite only (the issue asks for one database)."""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode
from sqlalchemy.orm import Session

from marketplace.accounts import service as accounts
from marketplace.accounts.models import Role, TokenKind, User
from tests.support.database import DATABASE_KIND
from tests.support.factories import book, make_practitioner, make_user, weekday_at

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]

pytestmark = pytest.mark.skipif(
    DATABASE_KIND != "sqlite", reason="fuzzing runs once, on SQLite (the issue asks for one)"
)


@pytest.fixture
def callers(db: Session) -> dict[str, User]:
    """One caller of each kind, and a booking between two of them to find."""
    patient, admin = make_user(db), make_user(db, Role.ADMIN)
    practitioner = make_practitioner(db)
    book(db, patient, practitioner, weekday_at(10))
    return {"patient": patient, "practitioner": practitioner.user, "admin": admin}


def test_no_operation_fails_or_breaks_its_contract(
    app: Flask, db: Session, callers: dict[str, User]
) -> None:
    def bearer(user: User) -> dict[str, str]:
        """A fresh token for every call: a generated logout or erasure may end the last one."""
        return {"Authorization": f"Bearer {accounts.issue_token(db, user, TokenKind.API).secret}"}

    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    failures: dict[str, str] = {}
    operations = 0
    for loaded in schema.get_all_operations():
        if isinstance(loaded, Err):
            raise loaded.err()
        operation = loaded.ok()
        operations += 1

        @given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def each_caller_gets_a_documented_answer(case: Any) -> None:
            for user in callers.values():
                case.call_and_validate(headers=bearer(user), checks=CHECKS)

        try:
            each_caller_gets_a_documented_answer()
        except Exception as failure:
            failures[operation.label] = str(failure)[:2000]
    assert operations >= 40
    assert failures == {}, "\n\n".join(f"{label}: {text}" for label, text in failures.items())
