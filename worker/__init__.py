"""Celery wiring: the Celery app bound to the Flask app (Flask's `celery_init_app` pattern)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready
from flask import Flask

from marketplace.errors import database_unavailable
from marketplace.logs import format_celery_handlers
from worker.schedule import beat_schedule

# A task that finds PostgreSQL away (a restart, a failover) is sent again this many seconds
# later, up to this many times (a minute and more), instead of failing with a traceback. Tasks
# are idempotent and their unit of work rolled back, so a repeat is safe.
DATABASE_RETRY_SECONDS = 5
DATABASE_MAX_RETRIES = 12
log = logging.getLogger("worker")


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[type-arg]
        """Every task runs inside the Flask app context, so services and config are at hand."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    return self.run(*args, **kwargs)
                except Exception as exc:
                    if self.request.called_directly or not database_unavailable(exc):
                        raise
                    log.warning(
                        "task %s: database unavailable (%s), retrying in %ss",
                        self.name,
                        type(exc).__name__,
                        DATABASE_RETRY_SECONDS,
                    )
                    raise self.retry(
                        exc=exc, countdown=DATABASE_RETRY_SECONDS, max_retries=DATABASE_MAX_RETRIES
                    ) from exc

    celery_app: Celery = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.conf.update(include=["worker.tasks"], beat_schedule=beat_schedule(app.config))
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    worker_ready.connect(lambda **_: say_where_messages_go(app), weak=False)
    for signal in (after_setup_logger, after_setup_task_logger):
        signal.connect(
            lambda logger, **_: format_celery_handlers(logger, app.config["LOG_FORMAT"]),
            weak=False,
        )
    return celery_app


def say_where_messages_go(app: Flask) -> None:
    """Without an SMTP server (the embedded default) emails are files: say where to find them."""
    outbox = Path(app.instance_path) / "outbox"
    if not app.config["MAIL_SERVER"]:
        log.warning("No MAIL_SERVER is set: emails are written as .eml files into %s", outbox)
    if app.config["SMS_BACKEND"] == "file":
        log.warning("SMS_BACKEND=file: text messages are written as .sms.txt files into %s", outbox)
