"""Failed-login limits under gunicorn (4 workers) on PostgreSQL and Redis, driven over loopback.

Measures what an attacker gets, not speed:

1. An address blocked on an account after its failures: how many further guesses it gets (the
   target is 0) while the same clients also send requests whose content once caused a 500 and
   switched a worker's limiter to fresh in-memory counters (a lone surrogate in the email, an
   email of 100,000 characters, a body over 1 MB, deeply nested JSON, odd addresses in
   X-Forwarded-For), from several threads at once.
2. Concurrent guesses at one account from one address: failures let through (at most 10).
3. One account guessed at from many addresses at once: total failures (never more than the
   account's 100 an hour), and whether its owner then gets in from a new address.
4. Twelve addresses guessing for a while: failures, and whether the owner gets in.

The server trusts one proxy (`PROXY_FIX_X_FOR=1`) so this one process can speak from many
addresses through X-Forwarded-For; by default (`PROXY_FIX_X_FOR=0`) the app ignores that header.
Run:

    .venv/bin/python bench/login_limits.py [--spread-seconds 20]

PostgreSQL: BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/
login_limits_bench; the database is created, and dropped at the end). Redis: BENCH_REDIS_URL
(default redis://127.0.0.1:6379/13); the keys the app makes there (`login:*`, `LIMITS*`) are
deleted before and after. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from bench.servers import free_port, start_gunicorn  # noqa: E402
from marketplace import migrate  # noqa: E402
from tests.support.services import postgres_database  # noqa: E402

PASSWORD = "a long bench passphrase"
WRONG = "not the passphrase"
APP_KEYS = ("login:*", "LIMITS*")
ODD_ADDRESSES = [
    "fe80::1%eth0",
    "::ffff:198.51.100.7",
    "not an address",
    "1.2.3.4:80",
    "[2001:db8::1]",
    "2001:db8::1%",
    "ÿ" * 2000,
]


def start_app(database_url: str, redis_url: str, port: int) -> subprocess.Popen[bytes]:
    environment = os.environ | {
        "MARKETPLACE_ENV": "testing",
        "SECRET_KEY": "bench",
        "INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-login-limits-"),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": "memory://",  # no broker keys left in Redis
        "PROXY_FIX_X_FOR": "1",
        "LOG_LEVEL": "ERROR",
    }
    return start_gunicorn("marketplace.wsgi:app", port, environment, "--workers", "4")


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post(self, path: str, body: bytes, address: str, content_type: str) -> int:
        headers = {"Content-Type": content_type, "X-Forwarded-For": address}
        for _ in range(2):
            connection = getattr(self.local, "connection", None)
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                self.local.connection = connection
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    self.local.connection = None
                return response.status
            except (http.client.HTTPException, OSError):
                connection.close()
                self.local.connection = None
        return 0

    def login(self, email: str, password: str, address: str) -> int:
        body = json.dumps({"email": email, "password": password}).encode()
        return self.post("/api/v1/auth/login", body, address, "application/json")


def odd_requests(client: Client, email: str, address: str) -> list[int]:
    """Requests whose content once made a limit's key raise (a 500, then memory counters)."""
    as_json = "application/json"
    surrogate = b'{"email": "\\ud800@x.org", "password": "x"}'  # JSON for a lone surrogate
    long_email = json.dumps({"email": "a" * 100_000 + "@x.org", "password": "x"}).encode()
    huge = b'{"email": "' + b"a" * 1_100_000 + b'", "password": "x"}'
    nested = b"[" * 100_000
    statuses = [
        client.post("/api/v1/auth/login", surrogate, address, as_json),
        client.post("/api/v1/auth/login", long_email, address, as_json),
        client.post("/api/v1/auth/login", huge, address, as_json),
        client.post("/api/v1/auth/login", nested, address, as_json),
        client.post("/api/v1/auth/register", huge, address, as_json),
    ]
    for odd in ODD_ADDRESSES:
        statuses.append(client.login(email, WRONG, odd))
        statuses.append(client.login("\ud800@x.org", WRONG, odd))
    return statuses


def register(client: Client, email: str, address: str) -> None:
    body = {"email": email, "password": PASSWORD, "full_name": "Bench", "role": "patient"}
    status = client.post(
        "/api/v1/auth/register", json.dumps(body).encode(), address, "application/json"
    )
    if status != 201:
        raise SystemExit(f"registration answered {status}")


def in_parallel(threads: int, jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda job: job(), jobs))


def blocked_address(client: Client) -> None:
    email, address = "blocked@example.org", "198.51.100.7"
    register(client, email, "192.0.2.250")
    before = [client.login(email, WRONG, address) for _ in range(12)]
    print(f"1. one address, one account: {before.count(401)} failures, {before.count(429)} refused")
    jobs: list[Callable[[], Any]] = []
    for _ in range(20):
        jobs.append(lambda: ("odd", odd_requests(client, email, address)))
        jobs.append(
            lambda: (
                "guess",
                [client.login(email, WRONG, address), client.login(email, PASSWORD, address)],
            )
        )
    results = in_parallel(8, jobs)
    odd = Counter(status for kind, statuses in results if kind == "odd" for status in statuses)
    guesses = Counter(status for kind, s in results if kind == "guess" for status in s)
    let_through = sum(count for status, count in guesses.items() if status != 429)
    print(
        f"   odd requests (with guesses from odd addresses): {sum(odd.values())}, "
        f"by status {dict(sorted(odd.items()))} "
        f"(5xx: {sum(c for s, c in odd.items() if s >= 500)})"
    )
    print(
        f"   guesses from the blocked address meanwhile: {sum(guesses.values())}, "
        f"let through {let_through} (wrong or right password; target 0)"
    )


def concurrent_from_one_address(client: Client) -> None:
    email, address = "burst@example.org", "198.51.100.8"
    register(client, email, "192.0.2.251")
    statuses = in_parallel(16, [lambda: client.login(email, WRONG, address)] * 64)
    print(
        f"2. 64 guesses at once from one address: {statuses.count(401)} failures let through "
        f"(limit 10 a minute), {statuses.count(429)} refused"
    )


def many_addresses(client: Client) -> None:
    email = "many@example.org"
    register(client, email, "192.0.2.252")
    addresses = [f"10.{n // 250}.{n % 250}.{1 + n % 7}" for n in range(400)]
    jobs = [partial(client.login, email, WRONG, a) for a in addresses for _ in range(3)]
    statuses = Counter(in_parallel(16, jobs))
    other = sum(count for status, count in statuses.items() if status not in {401, 429})
    print(
        f"3. {len(jobs)} guesses from {len(addresses)} addresses at once: {statuses[401]} "
        f"failures (budget 100 an hour), {statuses[429]} refused, other {other}"
    )
    owner = client.login(email, PASSWORD, "203.0.113.77")
    print(f"   owner from a new address afterwards: {owner} (429: the known cost, 100 sites)")


def twelve_addresses(client: Client, seconds: float) -> None:
    email = "twelve@example.org"
    register(client, email, "192.0.2.253")
    addresses = [f"172.16.{n}.9" for n in range(12)]
    deadline = time.monotonic() + seconds
    counts: Counter[int] = Counter()
    lock = threading.Lock()

    def hammer(address: str) -> None:
        while time.monotonic() < deadline:
            status = client.login(email, WRONG, address)
            with lock:
                counts[status] += 1
            if status == 429:
                time.sleep(0.2)

    in_parallel(12, [partial(hammer, a) for a in addresses])
    print(
        f"4. 12 addresses guessing for {seconds:.0f} s: {counts[401]} failures, "
        f"{counts[429]} refused"
    )
    known = client.login(email, PASSWORD, addresses[0])  # before the owner ends the run
    owner = client.login(email, PASSWORD, "203.0.113.78")
    print(f"   right password from a guessing address: {known}; owner from a new address: {owner}")


def drop_database(url: str) -> None:
    parts = urlsplit(url)
    server = create_engine(
        urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT"
    )
    with server.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)'))
    server.dispose()


def delete_app_keys(store: redis.Redis) -> int:
    keys = [key for pattern in APP_KEYS for key in store.scan_iter(pattern)]
    return int(store.delete(*keys)) if keys else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spread-seconds", type=float, default=20)
    args = parser.parse_args()
    base = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/login_limits_bench"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    store = redis.Redis.from_url(redis_url)
    delete_app_keys(store)
    url = postgres_database(base.rsplit("/", 1)[1])
    server: subprocess.Popen[bytes] | None = None
    try:
        migrate.upgrade(url)
        port = free_port()
        server = start_app(url, redis_url, port)
        client = Client(port)
        print("gunicorn, 4 workers, PostgreSQL, Redis; X-Forwarded-For trusted (one proxy)")
        blocked_address(client)
        concurrent_from_one_address(client)
        many_addresses(client)
        twelve_addresses(client, args.spread_seconds)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        drop_database(url)
        print(f"cleaned up: database dropped, {delete_app_keys(store)} Redis keys deleted")


if __name__ == "__main__":
    main()
