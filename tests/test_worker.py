"""A real Celery worker process consumes a task from a real broker: the embedded one (kombu's
SQLAlchemy transport on a SQLite file) and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from flask import Flask

from tests.support.services import require_redis

ROOT = Path(__file__).resolve().parent.parent


def broker_and_backend(kind: str, tmp_path: Path) -> tuple[str, str]:
    if kind == "redis":
        url = require_redis()
        return url, url
    return f"sqla+sqlite:///{tmp_path}/broker.db", f"db+sqlite:///{tmp_path}/results.db"


@pytest.fixture(params=["embedded", "redis"])
def running_worker(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Celery, str, Path]]:
    broker, backend = broker_and_backend(request.param, tmp_path)
    queue = f"test-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "MARKETPLACE_ENV": "testing",
        "SECRET_KEY": "worker-test",
        "DATABASE_URL": f"sqlite:///{tmp_path}/app.db",
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": backend,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "MAIL_SERVER": "",
    }
    log_path = tmp_path / "worker.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.main",
            "worker",
            "--pool=solo",
            "--queues",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    client = Celery("test-client", broker=broker, backend=backend)
    client.conf.update(task_serializer="json", accept_content=["json"])
    try:
        yield client, queue, log_path
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
        client.close()


@pytest.mark.worker
def test_a_real_worker_runs_a_task(running_worker: tuple[Celery, str, Path]) -> None:
    client, queue, log_path = running_worker
    result = client.send_task("worker.tasks.ping", queue=queue)
    try:
        answer = result.get(timeout=60)
    except Exception as exc:
        pytest.fail(f"no answer from the worker ({exc!r}); its log:\n{log_path.read_text()}")
    assert answer == "pong"
    outbox = log_path.parent / "instance" / "outbox"
    assert f"emails are written as .eml files into {outbox}" in log_path.read_text()


def test_beat_schedule_names_only_registered_tasks(app: Flask) -> None:
    celery = app.extensions["celery"]
    celery.loader.import_default_modules()
    for entry in celery.conf.beat_schedule.values():
        assert entry["task"] in celery.tasks
