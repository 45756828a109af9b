"""With REDIS_URL set, rate-limit counters live in Redis, so every web process shares them.

Runs the app in a child process: the limiter is one per process, and this test's app must not
replace the memory storage the rest of the suite uses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import redis

from marketplace.accounts.throttle import account_digest
from tests.support.services import require_redis

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from marketplace import create_app, migrate
migrate.upgrade(sys.argv[1])
app = create_app({"CELERY": {"broker_url": "memory://"}})
client = app.test_client()
body = {"email": sys.argv[3], "password": "wrong-password"}
statuses = [client.post("/api/v1/auth/login", json=body, environ_base={"REMOTE_ADDR": sys.argv[2]})
            .status_code for _ in range(11)]
print(json.dumps(statuses))
"""


def test_failed_logins_are_counted_in_redis(tmp_path: Path) -> None:
    redis_url = require_redis()
    client_address = f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}"
    email = f"{uuid.uuid4().hex}@example.org"  # an account of its own
    database_url = f"sqlite:///{tmp_path}/app.db"
    env = {
        **os.environ,
        "MARKETPLACE_ENV": "testing",
        "SECRET_KEY": "rate-limit-test",
        "REDIS_URL": redis_url,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, database_url, client_address, email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    statuses = json.loads(child.stdout.strip().splitlines()[-1])
    assert statuses == [401] * 10 + [429]
    store = redis.Redis.from_url(redis_url)
    keys = store.keys(f"*{client_address}*")
    assert keys, "the limiter kept no counter in Redis"
    store.delete(*keys, *store.keys(f"*{account_digest(email)}*"))
