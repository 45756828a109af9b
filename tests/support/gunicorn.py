"""The app served by a real gunicorn with the project's gunicorn.conf.py, on a free loopback
port, for tests that need what only a real server does (its limits, its access log, several
worker processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "gunicorn.conf.py"
START_TIMEOUT = 60
# The test run's own settings that must not reach the served app.
FOREIGN_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MAIL_SERVER",
    "TEST_DATABASE",
    "MAX_CONTENT_LENGTH",
    "LOG_FORMAT",
)


@contextmanager
def serving(
    folder: Path, database_url: str, *, workers: int, threads: int, ready: Callable[[int], bool]
) -> Iterator[tuple[int, Path]]:
    """gunicorn serving the app on `database_url` until the block ends: (port, its log), once
    `ready(port)` says so (an OSError counts as not yet)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_SETTINGS}
    env |= {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(folder / "instance"),
        "MARKETPLACE_ENV": "development",
        "SECRET_KEY": "real-gunicorn-test",
        "PYTHONPATH": str(ROOT),
    }
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "gunicorn.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--config",
                str(CONFIG),
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "marketplace.wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(ready, port):
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        yield port, log_path
    finally:
        process.terminate()
        process.wait(timeout=15)


def _answers(ready: Callable[[int], bool], port: int) -> bool:
    try:
        return ready(port)
    except OSError:
        return False
