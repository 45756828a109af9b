"""The application factory."""

from __future__ import annotations

import gc
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from marketplace.apidocs import OperationIdPlugin
from marketplace.config import build_config
from marketplace.db import init_database
from marketplace.errors import register_error_handlers
from marketplace.extensions import MarketplaceApi, limiter
from marketplace.http_guards import register_request_guards
from marketplace.logs import configure_logging
from marketplace.storage import init_evidence_store


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app from the environment; `config` overrides any setting (tests use it)."""
    app = Flask("marketplace", instance_path=_instance_path())
    instance_path = Path(app.instance_path)
    instance_path.mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(build_config(instance_path))
    if config:
        app.config.update(config)
    configure_logging(app.config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if app.config["PROXY_FIX_X_FOR"]:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_FIX_X_FOR"])  # type: ignore[method-assign]

    init_database(app)
    init_evidence_store(app)
    register_error_handlers(app)
    register_request_guards(app)
    api = _init_api(app)
    limiter.init_app(app)
    _register_domains(app, api)
    _register_commands(app)
    _init_worker(app)
    return app


def settle_heap() -> None:
    """For a server process once its app is built (`marketplace.wsgi`, `worker.main`): what
    start-up made lives as long as the process, so take it out of the cyclic garbage collector's
    full collections, which otherwise walk all of it (pauses of tens of ms in a busy worker;
    bench/match.py saw them as its slowest requests). Garbage is collected first, so none is
    frozen for good."""
    gc.collect()
    gc.freeze()


def _instance_path() -> str | None:
    """INSTANCE_PATH overrides Flask's default (`instance/` beside the package in a checkout)."""
    configured = os.environ.get("INSTANCE_PATH", "")
    return str(Path(configured).resolve()) if configured else None


def _init_api(app: Flask) -> MarketplaceApi:
    api = MarketplaceApi(app, spec_kwargs={"extra_plugins": [OperationIdPlugin()]})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme(
        "sessionCookie",
        {"type": "apiKey", "in": "cookie", "name": app.config["SESSION_COOKIE_NAME"]},
    )
    return api


def _register_domains(app: Flask, api: MarketplaceApi) -> None:
    from marketplace.accounts import api as accounts_api
    from marketplace.accounts.auth import init_auth
    from marketplace.admin import api as admin_api
    from marketplace.admin.pages import init_pages as init_admin_pages
    from marketplace.booking import bookings_api, care_requests_api
    from marketplace.caregivers import api as carers_api
    from marketplace.health import blueprint as health_blueprint
    from marketplace.practitioners import api as practitioners_api
    from marketplace.privacy import api as privacy_api
    from marketplace.reviews import api as reviews_api

    init_auth(app)
    api.register_blueprint(accounts_api.blp)
    api.register_blueprint(practitioners_api.blp)
    api.register_blueprint(admin_api.blp)
    api.register_blueprint(care_requests_api.blp)
    api.register_blueprint(bookings_api.blp)
    api.register_blueprint(privacy_api.blp)
    api.register_blueprint(reviews_api.blp)
    api.register_blueprint(carers_api.blp)
    app.register_blueprint(health_blueprint)
    init_admin_pages(app)


def _register_commands(app: Flask) -> None:
    from marketplace.cli import register_commands

    register_commands(app)


def _init_worker(app: Flask) -> None:
    from worker import celery_init_app

    celery_init_app(app)
