"""Reminder delivery benchmark: 10,000 due reminder emails, 2 worker processes on Redis, an SMTP
sink on loopback. Prints the time from the dispatch task being sent until every message has
reached the sink, the messages per second, and duplicates (the target is none). Then, for scale,
the sink's own ceiling: how many emails per second it takes from two bare smtplib clients in
other processes that do nothing but send a ready-made email of the same size.

A reminder row of a visit becomes an email to each party, so 10,000 reminder emails come from
5,000 reminder rows (2,500 visits, each with its early and late reminder due). Run:

    .venv/bin/python bench/reminders.py [--emails 10000] [--processes 2]

PostgreSQL: BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/
marketplace_bench_reminders; created and emptied). Broker: BENCH_REDIS_URL (default
redis://127.0.0.1:6379/13; flushed). Asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MARKETPLACE_ENV", "testing")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("INSTANCE_PATH", tempfile.mkdtemp(prefix="bench-reminders-"))

import redis  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from celery import Celery  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from bench.servers import free_port  # noqa: E402
from marketplace import create_app, migrate  # noqa: E402
from marketplace.accounts.models import Role, User  # noqa: E402
from marketplace.booking.models import Booking, BookingStatus, Reminder, ReminderKind  # noqa: E402
from marketplace.db import get_database  # noqa: E402
from marketplace.geo.geocoding import load_builtin_london_outcodes  # noqa: E402
from marketplace.practitioners.models import Mode  # noqa: E402
from tests.support.factories import make_practitioner  # noqa: E402
from tests.support.services import postgres_database  # noqa: E402

PRACTITIONERS, PATIENTS = 50, 200
DEDUPE_KEY = re.compile(rb"^X-Dedupe-Key: (\S+)", re.MULTILINE)


class Sink:
    def __init__(self) -> None:
        self.keys: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.sample = b""  # one email as it arrived

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = DEDUPE_KEY.search(envelope.content)
        with self.lock:
            self.keys[found[1].decode() if found else "?"] += 1
            self.sample = self.sample or envelope.content
        return "250 OK"

    def delivered(self) -> int:
        with self.lock:
            return len(self.keys)


def seed(url: str, emails: int) -> None:
    """Practitioners through the services; patients, bookings and due reminders in bulk."""
    app = create_app({"DATABASE_URL": url})
    now = datetime.now(UTC)
    first = (now + timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    visits = emails // 2 // len(ReminderKind)
    with app.app_context(), get_database().session_scope() as session:
        load_builtin_london_outcodes(session)
        practitioners = [make_practitioner(session).id for _ in range(PRACTITIONERS)]
        patients = [uuid.uuid4() for _ in range(PATIENTS)]
        session.execute(
            insert(User),
            [
                {
                    "id": patient,
                    "email": f"patient-{patient.hex}@bench.example",
                    "full_name": "Pat",
                    "role": Role.PATIENT,
                    "password_hash": "-",
                    "is_active": True,
                    "created_at": now,
                    "updated_at": now,
                }
                for patient in patients
            ],
        )
        bookings = []
        for index in range(visits):
            start = first + timedelta(minutes=30 * (index // PRACTITIONERS))
            bookings.append(
                {
                    "id": uuid.uuid4(),
                    "practitioner_id": practitioners[index % PRACTITIONERS],
                    "patient_id": patients[index % PATIENTS],
                    "mode": Mode.VIDEO,
                    "starts_at": start,
                    "ends_at": start + timedelta(minutes=30),
                    "status": BookingStatus.CONFIRMED,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        session.execute(insert(Booking), bookings)
        session.execute(
            insert(Reminder),
            [
                {
                    "id": uuid.uuid4(),
                    "booking_id": booking["id"],
                    "kind": kind,
                    "visit_starts_at": booking["starts_at"],
                    "send_at": now - timedelta(minutes=1),
                }
                for booking in bookings
                for kind in ReminderKind
            ],
        )
    get_database(app).engine.dispose()


def send_copies(port: int, data: bytes, copies: int) -> None:
    with smtplib.SMTP("127.0.0.1", port) as client:
        for copy in range(copies):
            key = f"X-Dedupe-Key: ceiling:{os.getpid()}:{copy}:".encode()
            marked = data.replace(b"X-Dedupe-Key: ", key)
            client.sendmail("bench@example.com", ["sink@example.com"], marked)


def sink_ceiling(port: int, sink: Sink, data: bytes, clients: int, copies: int = 2000) -> float:
    """Emails per second the sink takes from `clients` bare senders in their own processes."""
    before = sink.delivered()
    started = time.perf_counter()
    with ProcessPoolExecutor(clients) as pool:
        list(pool.map(send_copies, [port] * clients, [data] * clients, [copies] * clients))
    return (sink.delivered() - before) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emails", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    base = os.environ.get(
        "BENCH_POSTGRES_URL",
        "postgresql+psycopg://postgres@127.0.0.1:5432/marketplace_bench_reminders",
    )
    url = postgres_database(base.rsplit("/", 1)[1])
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    redis.Redis.from_url(redis_url).flushdb()
    migrate.upgrade(url)
    started = time.perf_counter()
    seed(url, args.emails)
    print(f"seeded {args.emails // 2} due reminder rows in {time.perf_counter() - started:.1f} s")

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # the sink's line-by-line log
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    environment = os.environ | {
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": redis_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(port),
        "MAIL_USE_TLS": "false",
        "REMINDER_SMS": "false",
    }
    worker = subprocess.Popen(  # noqa: S603 - a fixed command, no shell
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.main",
            "worker",
            "--pool=prefork",
            f"--concurrency={args.processes}",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=environment,
        start_new_session=True,
    )
    expected = args.emails // 2 // len(ReminderKind) * len(ReminderKind) * 2
    try:
        time.sleep(3)  # the worker connects
        client = Celery("bench", broker=redis_url)
        started = time.perf_counter()
        client.send_task("worker.tasks.dispatch_notifications")
        while sink.delivered() < expected and time.perf_counter() - started < 600:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        time.sleep(3)  # anything sent twice would show by now
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=60)
    delivered, doubled = sink.delivered(), sum(1 for count in sink.keys.values() if count > 1)
    ceiling = sink_ceiling(port, sink, sink.sample, args.processes)
    controller.stop()
    print(f"PostgreSQL, Redis, {args.processes} worker processes, SMTP sink on loopback")
    print(
        f"  {delivered} of {expected} reminder emails delivered"
        f" in {elapsed:.1f} s ({delivered / elapsed:.0f} emails/s)"
    )
    print(f"  messages delivered more than once: {doubled}")
    print(
        f"  the sink's ceiling, from {args.processes} bare smtplib clients sending a copy of one"
        f" of those emails: {ceiling:.0f} emails/s, so {args.emails} take at least"
        f" {args.emails / ceiling:.1f} s here"
    )


if __name__ == "__main__":
    main()
