"""The app as gunicorn serves it in bench/booking.py, plus a bare JSON endpoint to compare with."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue

from marketplace.app import create_app, settle_heap

app = create_app()
settle_heap()  # as marketplace.wsgi does


@app.get("/bench/bare")
def bare() -> ResponseReturnValue:
    return jsonify({"ok": True})
