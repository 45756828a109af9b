"""Entry point for `celery -A worker.main worker` and `celery -A worker.main beat`."""

from marketplace.app import create_app, settle_heap

flask_app = create_app()
settle_heap()  # before the pool forks: the children share the frozen pages too
celery = flask_app.extensions["celery"]
