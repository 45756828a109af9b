"""End to end: real Celery workers (prefork, with the beat) on Redis deliver the outbox to a real
SMTP server on loopback (aiosmtpd), from a database of the kind under test. Messages are counted
at the server by their dedupe key: each must arrive, and only once.

Each test has a redis-server of its own when one is installed (the tests that stop Redis need
one, and skip without it), so the shared Redis is never flushed or stopped."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from flask import Flask
from icalendar import Calendar
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from marketplace import create_app, migrate
from marketplace.accounts.models import Role, User
from marketplace.booking import bookings
from marketplace.booking.models import Reminder, ReminderKind
from marketplace.db import get_database, utcnow
from marketplace.geo.geocoding import load_builtin_london_outcodes
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.service import IDS_PER_TASK
from marketplace.practitioners.models import Mode
from tests.support.accounts import login
from tests.support.database import app_config, fresh_database_url
from tests.support.factories import book, make_booking, make_practitioner, make_user, weekday_at
from tests.support.services import PrivateRedis, free_port, missing_service, require_redis

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 4
HANDOVER_SECONDS = 2
WORKER_PROCESSES = 2
pytestmark = pytest.mark.worker


class SmtpSink:
    """An SMTP server on loopback that keeps every message it accepts; it can be stopped (then
    connections are refused) and started again on the same port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(str(message["X-Dedupe-Key"]).strip() for message in self.messages)

    def with_key(self, key: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if str(m["X-Dedupe-Key"]).strip() == key]


def wait_until(
    check: Callable[[], bool], seconds: float, what: str, stack: Stack | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    log = f"; the workers' log ends:\n{stack.log_tail()}" if stack else ""
    pytest.fail(f"timed out waiting for {what}{log}")


class Stack:
    """The database, the SMTP sink, the app the test writes through, and the workers."""

    def __init__(
        self, tmp: Path, url: str, sink: SmtpSink, broker: str, redis_server: PrivateRedis | None
    ) -> None:
        self.tmp, self.url, self.sink = tmp, url, sink
        self.broker, self.redis_server = broker, redis_server
        self.env = {
            **os.environ,
            "MARKETPLACE_ENV": "testing",
            "SECRET_KEY": "worker-delivery-test",
            "DATABASE_URL": url,
            "CELERY_BROKER_URL": broker,
            "INSTANCE_PATH": str(tmp / "instance"),
            "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(sink.port),
            "MAIL_USE_TLS": "false",
            "NOTIFICATION_LEASE_SECONDS": str(LEASE_SECONDS),
            "NOTIFICATION_HANDOVER_SECONDS": str(HANDOVER_SECONDS),
            "NOTIFICATION_RETRY_SECONDS": "1",
            "NOTIFICATION_DISPATCH_SECONDS": "1",
            "NOTIFICATION_MAX_ATTEMPTS": "3",
            "REMINDER_SMS": "false",
        }
        config = app_config(url) | {"CELERY": {"broker_url": broker}}
        self.app: Flask = create_app(config)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.logs = tmp / "workers.log"

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.logs.open("a")
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "worker.main",
                "worker",
                "--beat",
                "--schedule",
                str(self.tmp / f"beat-{uuid.uuid4().hex}"),
                "--pool=prefork",
                f"--concurrency={WORKER_PROCESSES}",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL to the worker and its pool processes at once, as the OOM killer would."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)

    def stop_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
        self.workers.clear()

    def session(self) -> Any:
        return get_database(self.app).session_scope()

    def outbox_counts(self) -> dict[NotificationStatus, int]:
        """Rows by status."""
        with self.session() as session:
            rows = session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            )
            return {status: count for status, count in rows}

    def log_tail(self) -> str:
        return self.logs.read_text()[-5000:] if self.logs.exists() else ""


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis | None]:
    """A redis-server of the test's own if one is installed, else None (the shared one)."""
    if not PrivateRedis.available():
        yield None
        return
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def stack(tmp_path: Path, app: Flask, redis_server: PrivateRedis | None) -> Iterator[Stack]:
    if redis_server is None:
        broker = require_redis()
        redis.Redis.from_url(broker).flushdb()
    else:
        broker = redis_server.url
    url = fresh_database_url(tmp_path, "marketplace_delivery")
    migrate.upgrade(url)
    sink = SmtpSink()
    sink.start()
    built = Stack(tmp_path, url, sink, broker, redis_server)
    with built.app.app_context(), built.session() as session:
        load_builtin_london_outcodes(session)
    try:
        with built.app.app_context():
            yield built
    finally:
        built.stop_workers()
        sink.stop()
        get_database(built.app).engine.dispose()
        # The suite's app sends tasks again: current as well as default, or every later
        # after-commit send would retry against this test's broker, gone with its Redis.
        app.extensions["celery"].set_default()
        app.extensions["celery"].set_current()


def make_due(session: Session, booking_id: uuid.UUID) -> None:
    session.execute(
        update(Reminder)
        .where(Reminder.booking_id == booking_id)
        .values(send_at=utcnow() - timedelta(seconds=1))
    )


def test_confirmation_reminders_cancel_and_reschedule(stack: Stack) -> None:
    with stack.session() as session:
        practitioner, patient = make_practitioner(session), make_user(session)
        kept = book(session, patient, practitioner, weekday_at(10))
        cancelled = book(session, patient, practitioner, weekday_at(12))
        moved = book(session, patient, practitioner, weekday_at(14))
        ids = (kept.id, cancelled.id, moved.id)
    stack.start_worker()
    confirmation = f"booking:{kept.id}:confirmed:0:confirmed:patient"
    wait_until(lambda: stack.sink.counts()[confirmation] == 1, 60, "the confirmation")
    (message,) = stack.sink.with_key(confirmation)
    calendar_part = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    data = calendar_part.get_payload(decode=True)
    assert isinstance(data, bytes)
    event = Calendar.from_ical(data).walk("VEVENT")[0]
    assert event.decoded("dtstart") == weekday_at(10)

    with stack.session() as session:
        actor = session.get_one(User, patient.id)
        bookings.cancel_booking(
            session, actor, ids[1], None, now=utcnow(), policy=bookings.DEFAULT_POLICY
        )
        bookings.reschedule_booking(session, actor, ids[2], weekday_at(15), now=utcnow())
        for booking_id in ids:
            make_due(session, booking_id)

    def reminder_keys(booking_id: uuid.UUID) -> set[str]:
        with stack.session() as session:
            reminders = session.scalars(select(Reminder).where(Reminder.booking_id == booking_id))
            return {
                f"reminder:{r.id}:{role}:email"
                for r in reminders
                if r.status.value != "dropped"
                for role in ("patient", "practitioner")
            }

    expected = reminder_keys(ids[0]) | reminder_keys(ids[2])
    assert len(expected) == 8  # two kinds, two people, two visits still held
    wait_until(lambda: all(stack.sink.counts()[k] == 1 for k in expected), 60, "the reminders")
    time.sleep(2 * LEASE_SECONDS)  # long enough for any second delivery to show
    counts = stack.sink.counts()
    assert all(counts[k] == 1 for k in expected)
    reminders_sent = [k for k in counts if k.startswith("reminder:")]
    assert sorted(reminders_sent) == sorted(expected)  # none for the cancelled visit
    for key in expected & reminder_keys(ids[2]):
        (reminder,) = stack.sink.with_key(key)
        body = reminder.get_body(("plain",))
        assert body is not None
        assert "15:00" in str(body.get_content())  # the new time


def seed_due_reminders(stack: Stack, visits: int) -> int:
    """`visits` future bookings of one practitioner and patient, both reminders of each due now:
    the number of messages that must arrive."""
    with stack.session() as session:
        practitioner, patient = make_practitioner(session), make_user(session)
        first = weekday_at(8, days_ahead=2)
        for index in range(visits):
            start = first + timedelta(minutes=30 * index)
            booking = make_booking(
                session,
                practitioner,
                start,
                start + timedelta(minutes=30),
                mode=Mode.VIDEO,
                patient_id=patient.id,
            )
            for kind in ReminderKind:
                session.add(
                    Reminder(
                        booking_id=booking.id,
                        kind=kind,
                        visit_starts_at=start,
                        send_at=utcnow() - timedelta(minutes=1),
                    )
                )
    return visits * 2 * 2


def reminder_counts(stack: Stack) -> Counter[str]:
    return Counter({k: n for k, n in stack.sink.counts().items() if k.startswith("reminder:")})


def assert_each_arrives_once(
    stack: Stack, expected: int, in_flight: frozenset[str] = frozenset()
) -> None:
    """Every message arrives, and none twice, except possibly one that was `in_flight` when a
    worker was killed: the SMTP server may have taken it an instant before its `sent` commit,
    a gap no protocol closes across SMTP. It carries the same Message-ID both times."""
    wait_until(lambda: len(reminder_counts(stack)) >= expected, 120, f"{expected} messages", stack)
    time.sleep(2 * LEASE_SECONDS)
    doubled = {key: count for key, count in stack.sink.counts().items() if count > 1}
    assert set(doubled) <= in_flight, doubled
    assert len(doubled) <= WORKER_PROCESSES, doubled  # each process sends one at a time
    assert all(count == 2 for count in doubled.values()), doubled
    assert len(reminder_counts(stack)) == expected
    with stack.session() as session:
        unsent = session.scalar(
            select(func.count()).where(Notification.status != NotificationStatus.SENT)
        )
    assert unsent == 0


def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(stack: Stack) -> None:
    expected = seed_due_reminders(stack, 125)  # 250 due reminders, 500 messages
    worker = stack.start_worker()
    wait_until(lambda: len(reminder_counts(stack)) >= 100, 120, "the first messages")
    stack.kill_worker(worker)
    assert len(reminder_counts(stack)) < expected, "killed too late to prove anything"
    with stack.session() as session:
        in_flight = frozenset(
            session.scalars(
                select(Notification.dedupe_key).where(
                    Notification.status == NotificationStatus.SENDING
                )
            )
        )
    assert len(in_flight) <= WORKER_PROCESSES * IDS_PER_TASK  # claimed by the killed tasks
    stack.start_worker()
    assert_each_arrives_once(stack, expected, in_flight)


def own_redis(stack: Stack) -> PrivateRedis:
    """The test's own Redis, to kill and restart; without redis-server the test cannot run."""
    if stack.redis_server is None:
        missing_service("redis-server is not installed: a test that stops Redis needs its own")
    assert stack.redis_server is not None
    return stack.redis_server


def test_redis_restarting_during_dispatch_loses_and_doubles_nothing(stack: Stack) -> None:
    server = own_redis(stack)
    expected = seed_due_reminders(stack, 125)
    stack.start_worker()
    wait_until(lambda: len(reminder_counts(stack)) >= 100, 120, "the first messages")
    server.kill()  # without saving: whatever it held is gone
    time.sleep(1)
    server.start()
    assert_each_arrives_once(stack, expected)


def test_redis_losing_its_queue_delays_confirmations_by_the_handover_not_the_lease(
    stack: Stack,
) -> None:
    """Bookings are made while their send tasks wait in Redis (no worker yet) and while Redis
    is down; Redis dies without saving and comes back empty. The dispatcher hands the rows out
    again once their handover is over (here 5 s), far sooner than the send lease (5 min), and
    each message arrives once."""
    server = own_redis(stack)
    handover = 5
    stack.env |= {
        "NOTIFICATION_HANDOVER_SECONDS": str(handover),
        "NOTIFICATION_LEASE_SECONDS": "300",
    }
    stack.app.config["NOTIFICATION_HANDOVER_SECONDS"] = handover
    hours = (9, 11, 13, 15)
    with stack.session() as session:
        practitioners = [make_practitioner(session) for _ in range(3)]
        patient_ids = [make_user(session).id for _ in range(12)]

    def book_one(index: int) -> None:
        with stack.session() as session:  # one booking, one commit, its own after-commit task
            patient = session.get_one(User, patient_ids[index])
            practitioner = practitioners[index // len(hours)]
            book(session, patient, practitioner, weekday_at(hours[index % len(hours)]))

    for index in range(8):  # their send tasks are in Redis
        book_one(index)
    server.kill()
    for index in range(8, 12):  # the after-commit send fails: nothing is in Redis for these
        book_one(index)
    with stack.session() as session:
        expected = set(session.scalars(select(Notification.dedupe_key)))
    confirmations = {key for key in expected if ":confirmed:" in key}
    assert len(confirmations) == 2 * 12
    server.start()
    back = time.monotonic()
    stack.start_worker()
    wait_until(lambda: set(stack.sink.counts()) >= expected, 90, "every message", stack)
    took = time.monotonic() - back
    print(f"every message delivered {took:.1f} s after Redis came back")
    assert took < 30, took  # the handover and a beat or two, not the 300 s send lease
    time.sleep(2 * handover + 2)  # long enough for a second copy to show
    counts = stack.sink.counts()
    assert set(counts) == expected  # none lost
    assert {key: n for key, n in counts.items() if n > 1} == {}  # none doubled
    assert stack.outbox_counts() == {NotificationStatus.SENT: len(expected)}


def test_smtp_refusing_connections_fails_then_an_admin_retry_sends(stack: Stack) -> None:
    stack.sink.stop()
    with stack.session() as session:
        booking = book(session, make_user(session), make_practitioner(session), weekday_at(10))
        admin = make_user(session, Role.ADMIN)
    started = time.monotonic()
    stack.start_worker()
    # The practitioner's "credential verified" and the booking's two confirmations.
    all_failed = lambda: stack.outbox_counts().get(NotificationStatus.FAILED, 0) == 3  # noqa: E731
    wait_until(all_failed, 60, "failed messages", stack)
    assert time.monotonic() - started >= 1 + 2  # retried after 1 s, then 2 s: backed off
    with stack.session() as session:
        failed = session.scalars(
            select(Notification).where(Notification.subject_id == booking.id)
        ).all()
        assert {n.attempts for n in failed} == {3}
        assert all("Connection refused" in (n.last_error or "") for n in failed)
    stack.sink.start()
    client = stack.app.test_client()
    assert login(client, email=admin.email).status_code == 200
    listed = client.get("/api/v1/admin/notifications?status=failed").get_json()["items"]
    assert len(listed) == 3
    for item in listed:
        assert client.post(f"/api/v1/admin/notifications/{item['id']}/retry").status_code == 200
    wait_until(lambda: len(stack.sink.counts()) == 3, 60, "the retried messages")
    with stack.session() as session:
        statuses = session.scalars(
            select(Notification.status).where(Notification.subject_id == booking.id)
        )
        assert set(statuses) == {NotificationStatus.SENT}
