"""Shared pieces for the request and response shapes at the edge."""

from __future__ import annotations

from typing import Any, NoReturn

import flask
import marshmallow as ma
from flask_smorest import Blueprint
from webargs.flaskparser import FlaskParser

from marketplace.errors import DomainError


class MalformedJSON(DomainError):
    status = 400
    code = "malformed_json"
    message = "The request body is not valid JSON."


class MarketplaceParser(FlaskParser):
    """webargs' Flask parser, answering malformed (or absurdly nested) JSON with a 400."""

    def _raw_load_json(self, req: flask.Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except RecursionError as exc:
            raise MalformedJSON("The request body is nested too deeply.") from exc

    def _handle_invalid_json_error(
        self, error: Exception, req: flask.Request, *args: Any, **kwargs: Any
    ) -> NoReturn:
        raise MalformedJSON() from error


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    """A flask-smorest blueprint that parses with `MarketplaceParser`."""

    ARGUMENTS_PARSER = MarketplaceParser()


def _refuse_unstorable_text(value: Any, path: str, problems: dict[str, list[str]]) -> None:
    """NUL and lone surrogates cannot be stored (PostgreSQL text) or hashed (argon2)."""
    if isinstance(value, str):
        if "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value):
            problems.setdefault(path, []).append("Contains characters that are not allowed.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_unstorable_text(item, f"{path}.{key}" if path else str(key), problems)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_unstorable_text(item, f"{path}.{index}" if path else str(index), problems)


class InputSchema(ma.Schema):
    """Base of every request schema (body and query)."""

    @ma.pre_load
    def refuse_unstorable_text(self, data: Any, **_: Any) -> Any:
        problems: dict[str, list[str]] = {}
        if isinstance(data, dict):
            for key, value in data.items():
                _refuse_unstorable_text(value, str(key), problems)
        if problems:
            raise ma.ValidationError(problems)
        return data


class StrictSchema(InputSchema):
    """Unknown fields are an error, so a typo in a field name is not silently ignored."""

    class Meta:
        unknown = ma.RAISE


def _trim(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class TrimmedString(ma.fields.String):
    """A string with surrounding white space removed; blank counts as missing (None when
    optional, an error when required)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text: str = super()._deserialize(_trim(value), attr, data, **kwargs)
        if not text:
            if self.required:
                raise ma.ValidationError("Must not be blank.")
            return None
        return text

    def _validate(self, value: Any) -> None:
        if value is not None:  # blank optional text became None: nothing left to check
            super()._validate(value)


class TrimmedEmail(ma.fields.Email):
    """An email address, with surrounding white space removed before it is checked."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(_trim(value), attr, data, **kwargs)
        return text


def bounded_datetime(value: Any) -> None:
    """Dates far outside anything bookable would overflow date arithmetic later."""
    if not 2000 <= value.year <= 2100:
        raise ma.ValidationError("Use a date between the years 2000 and 2100.")


def list_schema(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """`{"items": [...], "next_cursor": ...}` around an item schema."""
    return ma.Schema.from_dict(
        {
            "items": ma.fields.List(ma.fields.Nested(item_schema), required=True),
            "next_cursor": ma.fields.String(allow_none=True, required=True),
        },
        name=name,
    )
