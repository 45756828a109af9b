"""GET /healthz: is the database reachable, is the broker reachable."""

from __future__ import annotations

import logging

from celery import Celery
from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import create_engine, text

from marketplace.db import get_database
from marketplace.errors import error_response

log = logging.getLogger(__name__)
blueprint = Blueprint("health", __name__)

# A broker that is down answers "down" at once (one attempt, no retry sleep), and one that takes
# connections but never answers within a second: a load balancer's probe never hangs.
BROKER_TIMEOUT_SECONDS = 1


def database_is_up() -> bool:
    try:
        with get_database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure means "down"; the kind is logged, never the URL
        log.warning("health: database down (%s)", type(exc).__name__)
        return False
    return True


def _check_sqlalchemy_broker(url: str) -> None:
    """kombu's SQLAlchemy transport connects lazily; ask its database directly."""
    engine = create_engine(url.removeprefix("sqla+"))
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def broker_is_up() -> bool:
    celery: Celery = current_app.extensions["celery"]
    url = str(celery.conf.broker_url)
    try:
        if url.startswith("sqla+"):
            _check_sqlalchemy_broker(url)
        else:
            options = {
                **(celery.conf.broker_transport_options or {}),
                "socket_connect_timeout": BROKER_TIMEOUT_SECONDS,
                "socket_timeout": BROKER_TIMEOUT_SECONDS,
            }
            with celery.connection_for_write(
                connect_timeout=BROKER_TIMEOUT_SECONDS, transport_options=options
            ) as connection:
                # Opening the connection opens a channel, which pings Redis.
                connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_SECONDS)
    except Exception as exc:
        log.warning("health: broker down (%s)", type(exc).__name__)
        return False
    return True


@blueprint.get("/healthz")
def healthz() -> Response:
    checks = {
        "database": "ok" if database_is_up() else "down",
        "broker": "ok" if broker_is_up() else "down",
    }
    down = [name for name, state in checks.items() if state != "ok"]
    if down:
        return error_response(
            503, "service_unavailable", f"Down: {', '.join(down)}.", details=checks
        )
    return jsonify(checks)
