"""What the benches share to run a server on loopback: a free port, and gunicorn started and
waited for."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_gunicorn(
    app: str, port: int, environment: Mapping[str, str], *options: str, seconds: float = 20
) -> subprocess.Popen[bytes]:
    """gunicorn serving `app` ("module:variable") on the port, once it accepts connections."""
    server = subprocess.Popen(  # noqa: S603 - a fixed command, no shell
        [
            sys.executable,
            "-m",
            "gunicorn",
            *options,
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env=dict(environment),
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("gunicorn did not start")
