"""Accounts benchmark: password hashing cost, login and bearer-authenticated request latency.

Run: .venv/bin/python bench/bench_auth.py [--requests N]   (uses a throw-away SQLite database)
Prints the figures; asserts nothing. argon2id is deliberately slow (OWASP minimum: 19 MiB, t=2),
so logins cost tens of milliseconds while token-authenticated requests should stay cheap.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.2f} ms, p95 {p95:.2f} ms (n={len(ordered)})"


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--logins", type=int, default=30)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    os.environ.update(
        MARKETPLACE_ENV="testing",
        SECRET_KEY="bench",
        INSTANCE_PATH=str(workdir),
        DATABASE_URL=f"sqlite:///{workdir}/bench.db",
        RATELIMIT_ENABLED="false",
    )
    from marketplace import create_app, migrate
    from marketplace.accounts.passwords import hash_password

    migrate.upgrade(os.environ["DATABASE_URL"])
    app = create_app({"CELERY": {"broker_url": "memory://"}})
    client = app.test_client()

    tracemalloc.start()
    hash_ms = timed(lambda: hash_password("benchmark-password"), 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"argon2id hash:            {percentiles(hash_ms)}")
    print(f"  python heap peak {peak / 1024:.0f} KiB (argon2's 19 MiB block is native memory)")

    body = {"email": "bench@example.org", "password": "benchmark-password"}
    client.post("/api/v1/auth/register", json={**body, "full_name": "Bench", "role": "patient"})
    login_ms = timed(lambda: client.post("/api/v1/auth/login", json=body), args.logins)
    print(f"POST /auth/login:         {percentiles(login_ms)}")

    token = client.post("/api/v1/auth/tokens", json={"name": "bench"}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    me_ms = timed(lambda: client.get("/api/v1/me", headers=headers), args.requests)
    total_s = sum(me_ms) / 1000
    print(f"GET /me with bearer:      {percentiles(me_ms)}, {len(me_ms) / total_s:.0f} req/s")
    cookie_ms = timed(lambda: client.get("/api/v1/me"), args.requests)
    print(f"GET /me with session:     {percentiles(cookie_ms)}")


if __name__ == "__main__":
    main()
