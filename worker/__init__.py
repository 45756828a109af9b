"""Celery wiring: the Celery app bound to the Flask app (Flask's `celery_init_app` pattern)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from celery import Celery, Task
from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready
from flask import Flask

from marketplace.logs import format_celery_handlers
from worker.schedule import beat_schedule


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[type-arg]
        """Every task runs inside the Flask app context, so services and config are at hand."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

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
    log = logging.getLogger("worker")
    if not app.config["MAIL_SERVER"]:
        log.warning("No MAIL_SERVER is set: emails are written as .eml files into %s", outbox)
    if app.config["SMS_BACKEND"] == "file":
        log.warning("SMS_BACKEND=file: text messages are written as .sms.txt files into %s", outbox)
