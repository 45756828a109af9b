"""Logging: every record carries the id of the request or task it belongs to; production writes
one JSON object per line (python-json-logger), development plain lines.

What is logged is ids, codes and counts, never what people typed: no names, emails, phone
numbers, postcodes, addresses, notes, meeting links, tokens or passwords (a test walks a whole
journey at DEBUG and looks for each), and no client's network address (nor does gunicorn's
access log: gunicorn.conf.py). SQL parameters are hidden from logs and errors (`db`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import g, has_request_context
from pythonjsonlogger.json import JsonFormatter

NO_ID = "-"
SQL_LOGGER = "sqlalchemy.engine.Engine"
LIMITER_LOGGER = "flask-limiter"
PLAIN_FORMAT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s"


def current_request_id() -> str:
    """The HTTP request's id (X-Request-ID), else the Celery task's id, else '-'."""
    if has_request_context():
        return str(g.get("request_id", NO_ID))
    from celery import current_task

    if current_task and current_task.request.id:
        return str(current_task.request.id)
    return NO_ID


def _with_request_ids(make_record: Callable[..., logging.LogRecord]) -> Callable[..., Any]:
    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.request_id = current_request_id()
        return record

    make.adds_request_ids = True  # type: ignore[attr-defined]
    return make


def _above_debug(record: logging.LogRecord) -> bool:
    return record.levelno > logging.DEBUG


def _without_limit_keys(record: logging.LogRecord) -> bool:
    """Flask-Limiter logs each breach with the limit's key, which holds the client address
    ("ratelimit 10 per 1 minute (203.0.113.7) exceeded at endpoint: ..."): keep the line, not
    the key."""
    message = str(record.msg)
    if message.startswith("ratelimit ") and "exceeded" in message and len(record.args or ()) == 3:
        assert isinstance(record.args, tuple)
        record.args = (record.args[0], NO_ID, record.args[2])
    return True


def install_request_ids() -> None:
    """Every log record, from any library, gets `request_id`; SQLAlchemy never logs result
    rows (its DEBUG lines, which hold whatever was read: names, addresses, notes), whatever the
    level; and rate limit breaches are logged without their keys (client addresses).
    Installed once per process."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "adds_request_ids", False):
        logging.setLogRecordFactory(_with_request_ids(factory))
    engine_logger = logging.getLogger(SQL_LOGGER)
    if _above_debug not in engine_logger.filters:
        engine_logger.addFilter(_above_debug)
    limiter_logger = logging.getLogger(LIMITER_LOGGER)
    if _without_limit_keys not in limiter_logger.filters:
        limiter_logger.addFilter(_without_limit_keys)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(JSON_FIELDS, rename_fields={"levelname": "level", "asctime": "at"})
    return logging.Formatter(PLAIN_FORMAT)


def configure_logging(config: Mapping[str, Any]) -> None:
    """The app's handler on the root logger: LOG_FORMAT (json or plain) at LOG_LEVEL."""
    install_request_ids()
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "marketplace", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.marketplace = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(formatter(config["LOG_FORMAT"]))
    root.setLevel(config["LOG_LEVEL"])


def format_celery_handlers(logger: logging.Logger, log_format: str) -> None:
    """Celery sets up its own handlers in the worker: give them the same format."""
    install_request_ids()
    for handler in logger.handlers:
        handler.setFormatter(formatter(log_format))
