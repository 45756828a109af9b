"""What gunicorn serves: `gunicorn marketplace.wsgi:app`."""

from marketplace.app import create_app, settle_heap

app = create_app()
settle_heap()
