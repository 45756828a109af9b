"""Booking benchmark: `POST /api/v1/bookings` under load beside a bare Flask JSON endpoint.

Runs the app under gunicorn (2 workers of 4 threads) on PostgreSQL, then drives it from this
process over loopback with 32 concurrent keep-alive clients for 20 s per endpoint: requests/s and
p95 of the bare endpoint, then of booking distinct free slots (each client books its own
practitioner's consecutive slots, as its own patient). Afterwards it counts overlapping held
bookings in the database (the target is none). Run:

    .venv/bin/python bench/booking.py [--seconds 20] [--clients 32]

PostgreSQL: BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/
marketplace_bench_booking; the database is created and emptied). The broker is Redis, as in
production: BENCH_REDIS_URL (default redis://127.0.0.1:6379/14). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MARKETPLACE_ENV", "testing")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-booking-"))

from sqlalchemy import text  # noqa: E402

from bench.servers import free_port, start_gunicorn  # noqa: E402
from marketplace import create_app, migrate  # noqa: E402
from marketplace.accounts.models import Role, TokenKind  # noqa: E402
from marketplace.accounts.service import issue_token  # noqa: E402
from marketplace.clock import BUSINESS_ZONE, business_today  # noqa: E402
from marketplace.db import get_database  # noqa: E402
from marketplace.geo.geocoding import load_builtin_london_outcodes  # noqa: E402
from tests.support.factories import make_practitioner, make_user  # noqa: E402
from tests.support.services import postgres_database  # noqa: E402

SESSION_MINUTES = 30
OPEN_FROM, OPEN_UNTIL = 6, 22  # every day, so slots never run out in a run
OVERLAPS = """
SELECT count(*) FROM bookings a JOIN bookings b
  ON a.id < b.id AND a.status IN ('pending', 'confirmed') AND b.status IN ('pending', 'confirmed')
 AND (a.practitioner_id = b.practitioner_id OR a.patient_id = b.patient_id)
 AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at
"""


def seed(url: str, clients: int) -> list[tuple[str, str]]:
    """One practitioner and one patient (with an API token) per client."""
    app = create_app({"DATABASE_URL": url})
    pairs = []
    with app.app_context(), get_database().session_scope() as session:
        load_builtin_london_outcodes(session)
        every_day = [
            {
                "weekday": day,
                "start": clock_time(OPEN_FROM),
                "end": clock_time(OPEN_UNTIL),
                "modes": ["home", "video"],
            }
            for day in range(7)
        ]
        for _ in range(clients):
            practitioner = make_practitioner(
                session, weekly=every_day, session_minutes=SESSION_MINUTES
            )
            practitioner.horizon_days, practitioner.buffer_minutes = 365, 0
            patient = make_user(session, Role.PATIENT)
            token = issue_token(session, patient, TokenKind.API, name="bench").secret
            pairs.append((str(practitioner.id), token))
    get_database(app).engine.dispose()
    return pairs


def slot_starts() -> Any:
    """Consecutive slot starts from the day after tomorrow, in open hours (London time)."""
    day = business_today() + timedelta(days=2)
    while True:
        moment = datetime.combine(day, clock_time(OPEN_FROM), tzinfo=BUSINESS_ZONE)
        closing = datetime.combine(day, clock_time(OPEN_UNTIL), tzinfo=BUSINESS_ZONE)
        while moment + timedelta(minutes=SESSION_MINUTES) <= closing:
            yield moment.astimezone(UTC)
            moment += timedelta(minutes=SESSION_MINUTES)
        day += timedelta(days=1)


def start_booking_app(url: str, port: int) -> subprocess.Popen[bytes]:
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    environment = os.environ | {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "RATELIMIT_ENABLED": "false",
    }
    return start_gunicorn(
        "bench.booking_app:app",
        port,
        environment,
        "--workers",
        "2",
        "--threads",
        "4",
        seconds=10,
    )


Request = Callable[[http.client.HTTPConnection], int]


def drive(port: int, make_requests: list[Request], seconds: float) -> tuple[int, list[float], int]:
    """Each client sends its requests back to back until time is up: (ok, latencies ms, errors)."""
    latencies: list[list[float]] = [[] for _ in make_requests]
    failures = [0] * len(make_requests)
    stop_at = time.perf_counter() + seconds
    barrier = threading.Barrier(len(make_requests))

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        barrier.wait()
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = make_requests[index](connection)
            latencies[index].append((time.perf_counter() - started) * 1000)
            if status >= 400:
                failures[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(make_requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = [ms for per_client in latencies for ms in per_client]
    return len(flat) - sum(failures), flat, sum(failures)


def bare_request(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/bench/bare")
    response = connection.getresponse()
    response.read()
    return response.status


def booking_requests(pairs: list[tuple[str, str]]) -> list[Request]:
    def for_client(practitioner_id: str, token: str) -> Request:
        starts = slot_starts()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        free_from = datetime.min.replace(tzinfo=UTC)

        def request(connection: http.client.HTTPConnection) -> int:
            nonlocal free_from
            start = next(start for start in starts if start >= free_from)
            body = {"practitioner_id": practitioner_id, "start": start.isoformat(), "mode": "video"}
            connection.request("POST", "/api/v1/bookings", json.dumps(body), headers)
            response = connection.getresponse()
            answer = response.read()
            if response.status == 201:  # a first visit is a longer assessment: book after it
                free_from = datetime.fromisoformat(json.loads(answer)["end"])
            return response.status

        return request

    return [for_client(practitioner_id, token) for practitioner_id, token in pairs]


def report(name: str, ok: int, latencies: list[float], errors: int, seconds: float) -> float:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))] if ordered else float("nan")
    rate = ok / seconds
    print(
        f"  {name:18} {rate:8.1f} req/s  p50 {statistics.median(ordered):6.1f} ms"
        f"  p95 {p95:6.1f} ms  ({ok} ok, {errors} errors)"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    base = os.environ.get(
        "BENCH_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/marketplace_bench_booking",
    )
    url = postgres_database(base.rsplit("/", 1)[1])
    migrate.upgrade(url)
    pairs = seed(url, args.clients)
    port = free_port()
    server = start_booking_app(url, port)
    try:
        print(f"gunicorn, 2 workers, PostgreSQL; {args.clients} clients, {args.seconds:.0f} s each")
        bare = report(
            "bare JSON", *drive(port, [bare_request] * args.clients, args.seconds), args.seconds
        )
        booked = report(
            "POST /bookings", *drive(port, booking_requests(pairs), args.seconds), args.seconds
        )
        print(f"  booking at {100 * booked / bare:.0f}% of the bare endpoint's requests/s")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    app = create_app({"DATABASE_URL": url})
    with app.app_context(), get_database().engine.connect() as connection:
        print(f"  overlapping held bookings: {connection.execute(text(OVERLAPS)).scalar()}")
        held = "SELECT count(*) FROM bookings WHERE status = 'confirmed'"
        print(f"  bookings held: {connection.execute(text(held)).scalar()}")


if __name__ == "__main__":
    main()
