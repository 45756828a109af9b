"""Shared marshmallow pieces for the request and response shapes at the edge."""

from __future__ import annotations

from typing import Any

import marshmallow as ma


def _trim(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class TrimmedString(ma.fields.String):
    """A string with surrounding white space removed; a required one must not be blank."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(_trim(value), attr, data, **kwargs)
        if not text and self.required:
            raise ma.ValidationError("Must not be blank.")
        return text


class TrimmedEmail(ma.fields.Email):
    """An email address, with surrounding white space removed before it is checked."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(_trim(value), attr, data, **kwargs)
        return text


class StrictSchema(ma.Schema):
    """Unknown fields are an error, so a typo in a field name is not silently ignored."""

    class Meta:
        unknown = ma.RAISE
