"""The beat schedule. Exactly one beat process runs it."""

from __future__ import annotations

from typing import Any

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "purge-dead-access-tokens": {
        "task": "worker.tasks.purge_dead_access_tokens",
        "schedule": 3600.0,
    },
}
