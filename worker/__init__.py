"""Celery wiring: the Celery app bound to the Flask app (Flask's `celery_init_app` pattern)."""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask

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
    return celery_app
