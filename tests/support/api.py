"""What every API response shares: the error envelope."""

from __future__ import annotations

from typing import Any

from werkzeug.test import TestResponse

ENVELOPE_KEYS = {"code", "message", "details"}


def assert_envelope(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response is a JSON error of `status` in the envelope, with `code` and a message;
    returns the error."""
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json() is not None
    error: dict[str, Any] = response.get_json()["error"]
    assert set(error) == ENVELOPE_KEYS
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    return error
