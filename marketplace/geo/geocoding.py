"""Postcodes to points, behind one interface.

`TableGeocoder` reads the centroid table (the full postcode first, then its outward code, whose
centre is an approximate point);
`PostcodesIoGeocoder` asks postcodes.io for full postcodes the table lacks and keeps the answer
in the table. Which one runs is configuration (`GEOCODER`: `table` or `postcodes_io`).
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from importlib.resources import files
from pathlib import Path
from typing import Any, Protocol, TextIO

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from marketplace.db import utcnow
from marketplace.errors import ValidationFailed
from marketplace.geo.models import PostcodeCentroid
from marketplace.geo.postcodes import is_outward_code, normalise_postcode, outward_code

log = logging.getLogger(__name__)
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Point:
    latitude: float
    longitude: float
    # The district's centre stands in for a postcode that could not be looked up.
    approximate: bool = False


class UnknownPostcode(ValidationFailed):
    code = "unknown_postcode"
    message = "That postcode is not in use."


class Geocoder(Protocol):
    def locate(self, session: Session, postcode: str) -> Point | None:
        """The point of a normalised postcode, or None when it is not known; `UnknownPostcode`
        when an authority says that no such postcode exists."""


class TableGeocoder:
    def locate(self, session: Session, postcode: str) -> Point | None:
        rows = session.execute(
            select(
                PostcodeCentroid.code, PostcodeCentroid.latitude, PostcodeCentroid.longitude
            ).where(PostcodeCentroid.code.in_([postcode, outward_code(postcode)]))
        ).all()
        by_code = {code: (latitude, longitude) for code, latitude, longitude in rows}
        if postcode in by_code:
            return Point(*by_code[postcode])
        district = by_code.get(outward_code(postcode))
        return None if district is None else Point(*district, approximate=True)


class PostcodesIoGeocoder:
    """postcodes.io for full postcodes the table does not have; answers are kept in the table.
    A postcode it does not know (404) does not exist: no outward code stands in for it. Only
    when postcodes.io cannot be reached does the table's outward code stand in, marked
    approximate."""

    def __init__(self, base_url: str = "https://api.postcodes.io", timeout: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.table = TableGeocoder()

    def _fetch(self, postcode: str) -> Point | None:
        """postcodes.io's point for the postcode; None when it could not be asked (or its
        answer had no point, as for a postcode with no grid reference)."""
        url = f"{self.base_url}/postcodes/{urllib.parse.quote(postcode)}"
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as response:  # noqa: S310
                result = json.load(response).get("result") or {}
        except urllib.error.HTTPError as exc:
            if exc.code == HTTPStatus.NOT_FOUND:
                raise UnknownPostcode() from exc
            log.warning("postcodes.io lookup failed: HTTP %s", exc.code)
            return None
        except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError is an OSError
            log.warning("postcodes.io lookup failed: %s", type(exc).__name__)
            return None
        if result.get("latitude") is None or result.get("longitude") is None:
            return None
        return Point(float(result["latitude"]), float(result["longitude"]))

    def locate(self, session: Session, postcode: str) -> Point | None:
        known = session.get(PostcodeCentroid, postcode)
        if known is not None:
            return Point(known.latitude, known.longitude)
        fetched = self._fetch(postcode)
        if fetched is not None:
            upsert_centroids(
                session, [(postcode, fetched.latitude, fetched.longitude)], "postcodes.io"
            )
            return fetched
        return self.table.locate(session, postcode)  # its district's centre: approximate


def geocode(
    session: Session, geocoder: Geocoder, raw_postcode: str, field: str = "postcode"
) -> tuple[str, Point]:
    """The normalised postcode and its point, or a 422 naming the field."""
    postcode = normalise_postcode(raw_postcode, field)
    try:
        point = geocoder.locate(session, postcode)
    except UnknownPostcode as exc:
        raise UnknownPostcode.for_field(
            field, f"{postcode} is not a postcode in use; check it."
        ) from exc
    if point is None:
        raise ValidationFailed.for_field(
            field, f"We cannot place {postcode} on the map yet; check it, or try a nearby postcode."
        )
    return postcode, point


def upsert_centroids(
    session: Session,
    rows: Iterable[tuple[str, float, float]],
    source: str,
    *,
    overwrite: bool = True,
) -> int:
    """Insert (or, with `overwrite`, update) centroids in batches; re-importing is idempotent."""
    insert = postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    count = 0
    batch: list[dict[str, object]] = []
    for code, latitude, longitude in rows:
        batch.append(
            {
                "code": code,
                "latitude": latitude,
                "longitude": longitude,
                "source": source,
                "updated_at": utcnow(),
            }
        )
        if len(batch) == BATCH_SIZE:
            count += _write_batch(session, insert, batch, overwrite)
            batch = []
    if batch:
        count += _write_batch(session, insert, batch, overwrite)
    return count


def _write_batch(
    session: Session, insert: Any, batch: list[dict[str, object]], overwrite: bool
) -> int:
    statement = insert(PostcodeCentroid).values(batch)
    if not overwrite:
        session.execute(statement.on_conflict_do_nothing(index_elements=[PostcodeCentroid.code]))
        return len(batch)
    statement = statement.on_conflict_do_update(
        index_elements=[PostcodeCentroid.code],
        set_={
            "latitude": statement.excluded.latitude,
            "longitude": statement.excluded.longitude,
            "source": statement.excluded.source,
            "updated_at": statement.excluded.updated_at,
        },
    )
    session.execute(statement)
    return len(batch)


def read_centroid_csv(stream: TextIO) -> tuple[str, Iterator[tuple[str, float, float]]]:
    """Rows of an ONS Postcode Directory extract (`pcds,lat,long`, terminated rows skipped) or
    of an outcode CSV (`postcode,latitude,longitude`); returns the layout's name and the rows."""
    reader = csv.DictReader(stream)
    columns = set(reader.fieldnames or [])
    if {"pcds", "lat", "long"} <= columns:
        return "ons", _ons_rows(reader)
    if {"postcode", "latitude", "longitude"} <= columns:
        return "outcodes", _outcode_rows(reader)
    raise ValueError(
        "Expected the ONS Postcode Directory columns pcds,lat,long or an outcode CSV with "
        f"postcode,latitude,longitude; found {', '.join(sorted(columns)) or 'no header'}."
    )


def _coordinates(reader: csv.DictReader[str], latitude: str, longitude: str) -> tuple[float, float]:
    try:
        return float(latitude), float(longitude)
    except ValueError as exc:
        raise ValueError(
            f"line {reader.line_num}: {latitude!r}, {longitude!r} is no point"
        ) from exc


def _ons_rows(reader: csv.DictReader[str]) -> Iterator[tuple[str, float, float]]:
    for row in reader:
        if (row.get("doterm") or "").strip():
            continue  # terminated postcode
        latitude, longitude = _coordinates(reader, row["lat"], row["long"])
        if latitude > 90:  # the ONS marks postcodes without a grid reference with 99.999999
            continue
        try:
            postcode = normalise_postcode(row["pcds"])
        except ValidationFailed as exc:
            raise ValueError(f"line {reader.line_num}: {row['pcds']!r} is no postcode") from exc
        yield postcode, latitude, longitude


def _outcode_rows(reader: csv.DictReader[str]) -> Iterator[tuple[str, float, float]]:
    for row in reader:
        code = row["postcode"].strip().upper()
        if not is_outward_code(code):
            raise ValueError(f"line {reader.line_num}: {code!r} is no outward code")
        yield code, *_coordinates(reader, row["latitude"], row["longitude"])


def import_centroid_file(session: Session, path: Path) -> tuple[str, int]:
    with path.open(newline="", encoding="utf-8-sig") as stream:
        layout, rows = read_centroid_csv(stream)
        return layout, upsert_centroids(session, rows, layout)


def load_builtin_london_outcodes(session: Session) -> int:
    """The shipped London outcode centroids, where the table has nothing better already."""
    text = files("marketplace.geo").joinpath("data/london-outcodes.csv").read_text()
    _, rows = read_centroid_csv(io.StringIO(text))
    return upsert_centroids(session, rows, "builtin", overwrite=False)


def geocoder_from_config(config: Mapping[str, Any]) -> Geocoder:
    if config.get("GEOCODER") == "postcodes_io":
        return PostcodesIoGeocoder(config.get("POSTCODES_IO_URL") or "https://api.postcodes.io")
    return TableGeocoder()
