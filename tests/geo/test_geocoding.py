from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from marketplace.booking.care_requests import create_request
from marketplace.db import utcnow
from marketplace.errors import ValidationFailed
from marketplace.geo.geocoding import (
    Point,
    PostcodesIoGeocoder,
    TableGeocoder,
    UnknownPostcode,
    geocode,
    import_centroid_file,
    load_builtin_london_outcodes,
)
from marketplace.geo.models import PostcodeCentroid
from marketplace.practitioners.models import Mode
from tests.support.factories import make_user

ONS = """pcd,pcds,dointr,doterm,lat,long
"SW1A1AA","SW1A 1AA","198001","",51.501009,-0.141588
"SW1A1AB","SW1A 1AB","198001","200012",51.5,-0.14
"ZZ991ZZ","ZZ99 1ZZ","198001","",99.999999,0.000000
"""
OUTCODES = """postcode,eastings,northings,latitude,longitude,town,region
AB10,392900,804900,57.13514,-2.11731,Aberdeen,Aberdeen City
SW1A,529300,179900,51.50,-0.139,London,Greater London
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def count(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(PostcodeCentroid)) or 0


def test_ons_layout_skips_terminated_and_gridless_rows(db: Session, tmp_path: Path) -> None:
    before = count(db)
    layout, imported = import_centroid_file(db, write(tmp_path, "onspd.csv", ONS))
    assert (layout, imported) == ("ons", 1)
    assert count(db) == before + 1
    assert db.get_one(PostcodeCentroid, "SW1A 1AA").latitude == pytest.approx(51.501009)
    assert db.get(PostcodeCentroid, "SW1A 1AB") is None


def test_outcode_layout_and_reimport_is_idempotent(db: Session, tmp_path: Path) -> None:
    path = write(tmp_path, "outcodes.csv", OUTCODES)
    before = count(db)
    assert import_centroid_file(db, path) == ("outcodes", 2)
    after_first = count(db)
    assert import_centroid_file(db, path) == ("outcodes", 2)
    assert count(db) == after_first == before + 1  # SW1A was already built in: updated
    assert db.get_one(PostcodeCentroid, "SW1A").source == "outcodes"


def test_builtin_outcodes_do_not_overwrite_imported_data(db: Session, tmp_path: Path) -> None:
    import_centroid_file(db, write(tmp_path, "outcodes.csv", OUTCODES))
    load_builtin_london_outcodes(db)
    assert db.get_one(PostcodeCentroid, "SW1A").latitude == pytest.approx(51.50)


def test_table_geocoder_prefers_the_full_postcode(db: Session, tmp_path: Path) -> None:
    import_centroid_file(db, write(tmp_path, "onspd.csv", ONS))
    geocoder = TableGeocoder()
    assert geocoder.locate(db, "SW1A 1AA") == Point(51.501009, -0.141588)
    outcode_only = geocoder.locate(db, "SW1A 2AA")
    assert outcode_only is not None
    assert outcode_only == Point(
        db.get_one(PostcodeCentroid, "SW1A").latitude,
        db.get_one(PostcodeCentroid, "SW1A").longitude,
        approximate=True,  # the district's centre
    )


def test_an_unknown_area_is_a_clear_422(db: Session) -> None:
    with pytest.raises(ValidationFailed) as failure:
        geocode(db, TableGeocoder(), "ZE1 0AA")
    assert "ZE1 0AA" in failure.value.details["fields"]["postcode"][0]


def test_the_import_command_reports_bad_files(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    wrong = runner.invoke(args=["geo", "import", str(write(tmp_path, "x.csv", "a,b\n1,2\n"))])
    assert wrong.exit_code != 0
    assert "pcds,lat,long" in wrong.output
    broken = write(tmp_path, "y.csv", "postcode,latitude,longitude\nAB10,north,-2\n")
    result = runner.invoke(args=["geo", "import", str(broken)])
    assert result.exit_code != 0
    assert "line 2" in result.output


class FakePostcodesIo(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        FakePostcodesIo.calls.append(self.path)
        if self.path.endswith("N1%209ZZ"):  # the connection drops halfway through the answer
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"status": 200, "res')
            return
        if self.path.endswith("N1%209GU"):
            body, status = {"status": 200, "result": {"latitude": 51.53, "longitude": -0.1}}, 200
        else:
            body, status = {"status": 404, "error": "Postcode not found"}, 404
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def postcodes_io() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakePostcodesIo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakePostcodesIo.calls = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_postcodes_io_answers_are_kept_in_the_table(db: Session, postcodes_io: str) -> None:
    geocoder = PostcodesIoGeocoder(postcodes_io, timeout=2)
    assert geocoder.locate(db, "N1 9GU") == Point(51.53, -0.1)
    assert geocoder.locate(db, "N1 9GU") == Point(51.53, -0.1)
    assert len(FakePostcodesIo.calls) == 1
    assert db.get_one(PostcodeCentroid, "N1 9GU").source == "postcodes.io"


def test_a_postcode_postcodes_io_does_not_know_is_refused(db: Session, postcodes_io: str) -> None:
    geocoder = PostcodesIoGeocoder(postcodes_io)
    with pytest.raises(UnknownPostcode):
        geocoder.locate(db, "N1 1AA")  # 404, though the table knows the outcode N1
    with pytest.raises(ValidationFailed) as refused:
        geocode(db, geocoder, "n1 1aa", field="postcode")
    assert refused.value.code == "unknown_postcode"
    assert refused.value.details == {
        "fields": {"postcode": ["N1 1AA is not a postcode in use; check it."]}
    }


def test_only_an_unreachable_postcodes_io_falls_back_to_the_outcode(
    db: Session, postcodes_io: str
) -> None:
    n1 = db.get_one(PostcodeCentroid, "N1")
    cut_short = PostcodesIoGeocoder(postcodes_io).locate(db, "N1 9ZZ")
    assert cut_short == Point(n1.latitude, n1.longitude, approximate=True)
    unreachable = PostcodesIoGeocoder("http://127.0.0.1:9", timeout=0.5)
    located = unreachable.locate(db, "SE1 7PB")
    assert located is not None
    assert located.approximate
    assert db.get(PostcodeCentroid, "SE1 7PB") is None  # a stand-in is not kept


def test_a_request_says_when_its_point_is_approximate(db: Session, postcodes_io: str) -> None:
    patient = make_user(db)
    fields = {
        "mode": Mode.HOME,
        "specialty": "stroke",
        "address": "1 Test Street",
        "earliest": utcnow() + timedelta(days=1),
        "latest": utcnow() + timedelta(days=3),
    }
    unreachable = PostcodesIoGeocoder("http://127.0.0.1:9", timeout=0.5)
    down = fields | {"postcode": "SE1 7PB"}
    approximate = create_request(db, patient, down, unreachable, utcnow())
    assert approximate.location_approximate
    exact = create_request(
        db, patient, fields | {"postcode": "N1 9GU"}, PostcodesIoGeocoder(postcodes_io), utcnow()
    )
    assert not exact.location_approximate
    with pytest.raises(ValidationFailed) as refused:
        create_request(
            db,
            patient,
            fields | {"postcode": "N1 1AA"},
            PostcodesIoGeocoder(postcodes_io),
            utcnow(),
        )
    assert refused.value.code == "unknown_postcode"
