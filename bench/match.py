"""Matching benchmark: p50/p95/p99 of `match_practitioners` beside the bare candidate SQL.

Seeds N practitioners over the UK outcodes of ../shared/data/uk-outcodes.csv (40% in London),
each with weekly hours and about 10 bookings in the next two weeks, then times matching for home
and video requests. The match entries are stored in the place order a rebuild writes them in
(`reindex_all`), or with --scattered in practitioner order, as after much churn. Run:

    .venv/bin/python bench/match.py --sizes 10000,100000 --databases postgresql,sqlite [--keep]

PostgreSQL: BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/
marketplace_bench; the database is created and emptied). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MARKETPLACE_ENV", "testing")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-match-"))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.exc import SQLAlchemyError  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from marketplace import migrate  # noqa: E402
from marketplace.accounts.models import Role, User  # noqa: E402
from marketplace.app import settle_heap  # noqa: E402
from marketplace.booking.models import Booking, BookingStatus, CareRequest  # noqa: E402
from marketplace.clock import BUSINESS_ZONE, business_today  # noqa: E402
from marketplace.db import Database, refresh_statistics, utcnow  # noqa: E402
from marketplace.geo.geocoding import import_centroid_file  # noqa: E402
from marketplace.matching.candidates import candidate_lookup  # noqa: E402
from marketplace.matching.service import match_practitioners  # noqa: E402
from marketplace.practitioners.match_index import (  # noqa: E402
    entries_for,
    place_order,
    reindex_if_empty,
)
from marketplace.practitioners.models import (  # noqa: E402
    ListingStatus,
    MatchEntry,
    Mode,
    Practitioner,
    PractitionerSpecialty,
    Profession,
    WeeklyRule,
)
from marketplace.practitioners.vocabulary import SPECIALTY_SLUGS  # noqa: E402

ENTRY_COLUMNS = [c.key for c in MatchEntry.__table__.columns if c.key != "practitioner_id"]
OUTCODES = ROOT.parent / "shared" / "data" / "uk-outcodes.csv"
BATCH = 5000
FAKE_HASH = "$argon2id$v=19$m=19456,t=2,p=1$bm90LWEtcmVhbC1oYXNo$bm90LWEtcmVhbC1oYXNoLW5vdC1yZWFs"


def read_outcodes() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    london: list[tuple[float, float]] = []
    elsewhere: list[tuple[float, float]] = []
    with OUTCODES.open() as stream:
        for row in csv.DictReader(stream):
            point = (float(row["latitude"]), float(row["longitude"]))
            (london if row["uk_region"] == "London" else elsewhere).append(point)
    return london, elsewhere


def place(rng: random.Random, london: list[Any], elsewhere: list[Any]) -> tuple[float, float]:
    latitude, longitude = rng.choice(london if rng.random() < 0.4 else elsewhere)
    return latitude + rng.uniform(-0.01, 0.01), longitude + rng.uniform(-0.015, 0.015)


def insert_rows(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        session.execute(insert(table), rows[start : start + BATCH])


def seed(database: Database, size: int, rng: random.Random, scattered: bool) -> None:
    london, elsewhere = read_outcodes()
    now = utcnow()
    today = business_today(now)
    users, practitioners, specialties, rules, bookings, entries = [], [], [], [], [], []
    monday = datetime.combine(today - timedelta(days=today.weekday()), clock_time(0), tzinfo=UTC)
    for index in range(size):
        user_id, practitioner_id = uuid.uuid4(), uuid.uuid4()
        users.append(
            {
                "id": user_id,
                "email": f"p{index}@bench.example",
                "full_name": f"P {index}",
                "role": Role.PRACTITIONER,
                "password_hash": FAKE_HASH,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        latitude, longitude = place(rng, london, elsewhere)
        modes = rng.choice([("home", "video"), ("home", "video"), ("home",), ("video",)])
        session_minutes = rng.choice([45, 60, 60, 75])
        practitioners.append(
            {
                "id": practitioner_id,
                "user_id": user_id,
                "profession": rng.choice(
                    [Profession.PHYSIOTHERAPIST] * 2 + [Profession.NEUROMUSCULAR_THERAPIST]
                ),
                "bio": "",
                "offers_home": "home" in modes,
                "offers_video": "video" in modes,
                "base_postcode": None,
                "latitude": latitude,
                "longitude": longitude,
                "travel_radius_km": rng.choice([5, 8, 10, 15, 20, 30]),
                "session_minutes": session_minutes,
                "price_pence": 7000,
                "assessment_minutes": 75,
                "assessment_price_pence": 9000,
                "languages": ["en"],
                "timezone": "Europe/London",
                "min_notice_hours": 12,
                "horizon_days": 60,
                "buffer_minutes": 15,
                "travel_buffer_minutes": 30,
                "status": ListingStatus.LISTED,
                "listed_until": today + timedelta(days=500),
                "first_listed_at": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        own_specialties = [
            {"practitioner_id": practitioner_id, "slug": slug}
            for slug in rng.sample(SPECIALTY_SLUGS, rng.randint(2, 4))
        ]
        days = sorted(rng.sample(range(6), rng.randint(3, 5)))
        start_hour = rng.choice([8, 9, 10, 13])
        own_rules = [
            {
                "id": uuid.uuid4(),
                "practitioner_id": practitioner_id,
                "weekday": weekday,
                "start_time": clock_time(start_hour),
                "end_time": clock_time(start_hour + 4),
                "modes": list(modes),
            }
            for weekday in days
        ]
        specialties += own_specialties
        rules += own_rules
        entries += match_entries(practitioners[-1], own_specialties, own_rules)
        # About 10 bookings over the next two weeks, inside their hours, never overlapping.
        for week in (1, 2):
            for weekday in days:
                if rng.random() < 0.35:
                    continue
                starts = monday + timedelta(weeks=week, days=weekday, hours=start_hour)
                for hour in rng.sample(range(4), 2):
                    begins = starts + timedelta(hours=hour)
                    bookings.append(
                        {
                            "id": uuid.uuid4(),
                            "practitioner_id": practitioner_id,
                            "patient_id": user_id,
                            "mode": Mode(modes[0]),
                            "starts_at": begins,
                            "ends_at": begins + timedelta(minutes=45),
                            "status": BookingStatus.CONFIRMED,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
    if not scattered:  # as `flask db upgrade` or `flask db reindex` writes them
        # place_order only reads the attributes an entry would have
        entries.sort(key=lambda row: place_order(cast(MatchEntry, SimpleNamespace(**row))))
    with database.session_scope() as session:
        import_centroid_file(session, OUTCODES)
        insert_rows(session, User, users)
        insert_rows(session, Practitioner, practitioners)
        insert_rows(session, PractitionerSpecialty, specialties)
        insert_rows(session, WeeklyRule, rules)
        insert_rows(session, Booking, bookings)
        insert_rows(session, MatchEntry, entries)
    print(
        f"  seeded {size} practitioners, {len(rules)} weekly rules, {len(bookings)} bookings,"
        f" {len(entries)} match entries"
    )


def match_entries(
    practitioner: dict[str, Any], specialties: list[dict[str, Any]], rules: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The rows `reindex` would write, from a transient copy of the seeded practitioner."""
    transient = Practitioner(
        **practitioner,
        specialties=[PractitionerSpecialty(**row) for row in specialties],
        weekly_rules=[WeeklyRule(**row) for row in rules],
        exceptions=[],
    )
    return [
        {column: getattr(entry, column) for column in ENTRY_COLUMNS}
        | {"practitioner_id": practitioner["id"]}
        for entry in entries_for(transient)
    ]


def make_requests(database: Database, count: int, rng: random.Random) -> list[CareRequest]:
    """Requests for a week from tomorrow, opening at random minutes of the day (07:00-21:00
    London), so the figures do not depend on the time of day the bench runs."""
    london, elsewhere = read_outcodes()
    tomorrow = datetime.combine(business_today() + timedelta(days=1), clock_time(), BUSINESS_ZONE)
    made = []
    with database.session_scope() as session:
        patient = User(
            email=f"patient-{uuid.uuid4().hex[:8]}@bench.example",
            full_name="Patient",
            role=Role.PATIENT,
            password_hash=FAKE_HASH,
        )
        session.add(patient)
        session.flush()
        for index in range(count):
            mode = Mode.HOME if index % 2 == 0 else Mode.VIDEO
            latitude, longitude = place(rng, london, elsewhere)
            opens = tomorrow + timedelta(minutes=rng.randrange(7 * 60, 21 * 60))
            request = CareRequest(
                patient_id=patient.id,
                mode=mode,
                specialty=rng.choice(SPECIALTY_SLUGS),
                latitude=latitude if mode is Mode.HOME else None,
                longitude=longitude if mode is Mode.HOME else None,
                earliest=opens,
                latest=opens + timedelta(days=7),
            )
            session.add(request)
            made.append(request)
    return made


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    return (
        f"p50 {statistics.median(ordered):6.1f} ms  p95 {at(0.95):6.1f} ms  "
        f"p99 {at(0.99):6.1f} ms  (n={len(ordered)})"
    )


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def p95(samples: list[float]) -> float:
    return sorted(samples)[min(len(samples) - 1, int(0.95 * len(samples)))]


def time_one(database: Database, request: CareRequest, now: datetime) -> tuple[float, float, int]:
    """(full matching ms, bare candidate SQL ms, matches found) for one request."""
    today = business_today(now)
    with database.session_scope() as session:
        request = session.merge(request, load=False)
        statement, values = candidate_lookup(request, today, session.get_bind().dialect.name)
        bare = timed(lambda: session.execute(statement, values).all())
    with database.session_scope() as session:
        request = session.merge(request, load=False)
        started = time.perf_counter()
        found = match_practitioners(session, request, now=now, today=today)
        full = (time.perf_counter() - started) * 1000
    return full, bare, len(found)


def measure(database: Database, requests: list[CareRequest]) -> None:
    now = utcnow()
    for mode in (Mode.HOME, Mode.VIDEO):
        results = [time_one(database, r, now) for r in requests if r.mode is mode]
        full = [r[0] for r in results]
        bare = [r[1] for r in results]
        found = [r[2] for r in results]
        print(
            f"  {mode.value:5}  match_practitioners {percentiles(full)}  "
            f"(avg {statistics.mean(found):.1f} matches)"
        )
        print(
            f"  {mode.value:5}  bare candidate SQL  {percentiles(bare)}  "
            f"p95 ratio {p95(full) / max(0.01, p95(bare)):.1f}x"
        )


def explain(database: Database, request: CareRequest) -> None:
    today = business_today()
    with database.engine.connect() as connection:
        statement, values = candidate_lookup(request, today, connection.dialect.name)
        compiled = statement.params(values).compile(
            connection, compile_kwargs={"literal_binds": True}
        )
        prefix = "EXPLAIN" if connection.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN"
        sql = str(compiled).replace("%%", "%")  # text() escapes % again for the driver
        plan = connection.execute(text(f"{prefix} {sql}")).all()
    print(f"  plan ({request.mode.value} request):")
    for row in plan:
        print("    " + " | ".join(str(part) for part in row if part is not None))


def bench_url(kind: str, workdir: Path, size: int) -> str:
    """Where the benchmark keeps the database of one kind and size."""
    if kind == "sqlite":
        return f"sqlite:///{workdir}/bench-{size}.db"
    base = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/marketplace_bench"
    )
    return f"{base}_{size}"


def fresh_url(kind: str, workdir: Path, size: int) -> str:
    url = bench_url(kind, workdir, size)
    if kind == "sqlite":
        return url
    from tests.support.services import postgres_database

    return postgres_database(url.rsplit("/", 1)[1])


def kept_url(kind: str, workdir: Path, size: int) -> str | None:
    """The URL of a database an earlier `--keep` run seeded with `size` practitioners today."""
    url = bench_url(kind, workdir, size)
    try:
        database = Database(url)
        with database.session_scope() as session:
            seeded = session.scalar(text("SELECT count(*) FROM practitioners"))
            newest = session.scalar(text("SELECT max(created_at) FROM practitioners"))
        database.engine.dispose()
    except SQLAlchemyError:  # missing or never seeded: seed afresh
        return None
    fresh = newest is not None and str(newest)[:10] == str(utcnow().date())
    return url if seeded == size and fresh else None


def prepare(kind: str, workdir: Path, size: int, keep: bool, scattered: bool) -> Database:
    if keep and (url := kept_url(kind, workdir, size)) is not None:
        print("  reusing the database seeded earlier today")
        migrate.upgrade(url)
        database = Database(url)
        with database.session_scope() as session:
            reindex_if_empty(session)  # as `flask db upgrade` does after a migration empties it
        analyse(database)
        return database
    url = fresh_url(kind, workdir, size)
    migrate.upgrade(url)
    database = Database(url)
    started = time.perf_counter()
    seed(database, size, random.Random(size), scattered)
    analyse(database)
    print(f"  seeding took {time.perf_counter() - started:.0f} s")
    return database


def analyse(database: Database) -> None:
    """What autovacuum would have done by now (PostgreSQL), or `flask db upgrade` (SQLite)."""
    if database.engine.dialect.name == "postgresql":
        autocommit = database.engine.execution_options(isolation_level="AUTOCOMMIT")
        with autocommit.connect() as connection:
            connection.execute(text("VACUUM ANALYZE"))
    with database.session_scope() as session:
        refresh_statistics(session)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--databases", default="postgresql,sqlite")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="seed into kept databases (SQLite files in the temp dir) and reuse them the same day",
    )
    parser.add_argument(
        "--scattered",
        action="store_true",
        help="store the match entries in practitioner order, as after much churn, instead of in"
        " the place order a rebuild writes",
    )
    args = parser.parse_args()
    workdir = Path(tempfile.gettempdir() if args.keep else tempfile.mkdtemp(prefix="bench-match-"))
    for kind in args.databases.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"{kind}, {size} practitioners")
            database = prepare(kind, workdir, size, args.keep, args.scattered)
            requests = make_requests(database, args.requests, random.Random(-size))
            for mode in (Mode.HOME, Mode.VIDEO):
                explain(database, next(r for r in requests if r.mode is mode))
            settle_heap()  # as a server does once its app is built
            measure(database, requests)
            database.engine.dispose()


if __name__ == "__main__":
    main()
