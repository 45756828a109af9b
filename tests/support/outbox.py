"""Sending queued notifications as the worker does, inside the test's own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy.orm import Session

from marketplace.messages import delivery
from marketplace.notifications import service as outbox
from marketplace.notifications.channels import Channels

POLICY = outbox.DeliveryPolicy(max_attempts=3, retry_after=timedelta(minutes=1))


def send(
    app: Flask, db: Session, ids: list[uuid.UUID], channels: Channels, now: datetime
) -> dict[str, int]:
    """Send the notifications `ids` through `channels` at `now`, under `POLICY`."""

    @contextmanager
    def unit_of_work() -> Iterator[Session]:
        yield db
        db.flush()

    with app.app_context():
        return delivery.send_notifications(unit_of_work, ids, channels, POLICY, lambda: now)
