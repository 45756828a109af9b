"""Keyset pagination: `{"items": [...], "next_cursor": "..." | null}` with `?limit=&cursor=`."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import marshmallow as ma
from marshmallow import validate
from sqlalchemy import Select, literal, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from marketplace.errors import ValidationFailed
from marketplace.schemas import InputSchema

T = TypeVar("T")
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_CURSOR_LENGTH = 200


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class PageQuerySchema(InputSchema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT, validate=validate.Range(min=1, max=MAX_LIMIT)
    )
    cursor = ma.fields.String(load_default=None, validate=validate.Length(max=MAX_CURSOR_LENGTH))


def encode_cursor(sort_value: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([sort_value.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_text, id_text = json.loads(raw)
        sort_value, row_id = datetime.fromisoformat(sort_text), uuid.UUID(id_text)
        sort_value.astimezone(UTC)  # a time at the edge of the calendar overflows in UTC
    except (binascii.Error, ValueError, TypeError, OverflowError) as exc:
        raise ValidationFailed.for_field("cursor", "Not a cursor this list gave out.") from exc
    if sort_value.tzinfo is None:
        raise ValidationFailed.for_field("cursor", "Not a cursor this list gave out.")
    return sort_value, row_id


def paginate(
    session: Session,
    query: Select[Any],
    sort_column: InstrumentedAttribute[datetime],
    id_column: InstrumentedAttribute[uuid.UUID],
    limit: int,
    cursor: str | None,
    *,
    descending: bool = False,
) -> Page[Any]:
    key = tuple_(sort_column, id_column)
    if cursor:
        sort_value, row_id = decode_cursor(cursor)
        after = tuple_(literal(sort_value, sort_column.type), literal(row_id, id_column.type))
        query = query.where(key < after if descending else key > after)
    order = (sort_column.desc(), id_column.desc()) if descending else (sort_column, id_column)
    rows = list(session.scalars(query.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], encode_cursor(getattr(last, sort_column.key), last.id))
