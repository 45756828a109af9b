"""`./dev run` stops cleanly: SIGTERM or Ctrl-C (SIGINT) to its process group leaves no process
behind (gunicorn, the Celery worker, its pool children, the embedded beat) within a few seconds.

It runs the real command on the embedded defaults (SQLite database and broker in a temporary
instance folder), so it needs neither PostgreSQL nor Redis. Linux only: processes are found
through /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.services import free_port

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90  # migrations, demo data and a cold worker on a busy two-core machine
STOP_TIMEOUT = 8
# Everything that would point `./dev run` away from its embedded defaults.
FOREIGN_SETTINGS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "MAIL_SERVER",
    "SECRET_KEY",
    "TEST_DATABASE",
    "MARKETPLACE_ENV",
)

pytestmark = [
    pytest.mark.worker,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc"),
]


def process_table() -> dict[int, tuple[str, int, int]]:
    """Every live process: pid -> (state, parent pid, process group). Zombies count as gone."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it ended while we looked
            continue
        # The command name may hold spaces and parentheses: the fields follow its last ")".
        state, parent, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if state != "Z":
            table[int(entry.name)] = (state, int(parent), int(group))
    return table


def started_by(root: int) -> set[int]:
    """The root, its process group, and all its descendants (wherever their group is)."""
    table = process_table()
    found = {pid for pid, (_, _, group) in table.items() if group == root} | {root}
    grew = True
    while grew:
        children = {pid for pid, (_, parent, _) in table.items() if parent in found}
        grew = not children <= found
        found |= children
    return found


def still_running(pids: set[int]) -> set[int]:
    return pids & set(process_table())


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "(ended)"


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 (our own loopback URL)
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def running(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_SETTINGS}
    env |= {
        "PORT": str(port),
        "INSTANCE_PATH": str(tmp_path / "instance"),
        # Beat sends the dispatcher every second: the stop finds tasks on their way or running.
        "NOTIFICATION_DISPATCH_SECONDS": "1",
    }
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        ["./dev", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not healthy(f"http://127.0.0.1:{port}/healthz"):
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, "./dev run did not answer /healthz in time"
            time.sleep(0.5)
        wait_until_settled(tmp_path / "run.log")
        yield process
    finally:
        for pid in still_running(started_by(process.pid)):
            os.kill(pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def wait_until_settled(log: Path) -> None:
    """Until the worker is ready and the demo data is loaded, so the stop lands on a running
    service, not a starting one."""
    deadline = time.monotonic() + START_TIMEOUT
    while not all(line in log.read_bytes() for line in (b"ready.", b"Stop with Ctrl-C")):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_leaves_no_process_behind(
    running: subprocess.Popen[bytes], stop: signal.Signals, tmp_path: Path
) -> None:
    pids = started_by(running.pid)
    assert len(pids) >= 5, "the shell, gunicorn and its worker, celery and its children"
    started = time.monotonic()
    os.killpg(running.pid, stop)
    while still_running(pids) and time.monotonic() - started < STOP_TIMEOUT:
        running.poll()  # reap the shell once it ends
        time.sleep(0.1)
    took = time.monotonic() - started
    left = {pid: command_line(pid) for pid in still_running(pids)}
    assert left == {}, f"still running {took:.1f} s after {stop.name}: {left}"
    print(f"{stop.name}: every process gone in {took:.1f} s")
