"""The API's documentation: operation ids in the OpenAPI document, and the browsable docs
(Swagger UI), served wholly from the app's own origin.

Swagger UI's files come from the swagger-ui-bundle package, and a static script starts it, so the
page runs under a policy that allows script from this origin only: a docs page that loaded
script from a CDN would run third-party code with an admin's session cookie, and would be blank
offline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apispec import BasePlugin
from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from swagger_ui_bundle import swagger_ui_path
from werkzeug.routing import Rule

DOCS_ENDPOINT = "openapi_swagger_ui"
ASSET_ENDPOINT = "swagger_ui_asset"
# Only what the page loads: the distribution's index.html and oauth2-redirect.html are pages of
# their own (the first starts a demo from a third-party origin), so they are not served.
SWAGGER_UI_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)


def register_swagger_ui(blueprint: Blueprint, docs_path: str) -> None:
    """Add the docs page at `docs_path` and its assets below it to flask-smorest's blueprint."""
    docs_path = "/" + docs_path.lstrip("/")
    blueprint.add_url_rule(docs_path, endpoint=DOCS_ENDPOINT, view_func=docs_page)
    blueprint.add_url_rule(
        f"{docs_path}/assets/<filename>", endpoint=ASSET_ENDPOINT, view_func=swagger_ui_asset
    )


def docs_page() -> Response:
    blueprint = _blueprint_name()
    response = Response(
        render_template(
            "api/docs.html",
            spec_url=url_for(f"{blueprint}.openapi_json"),
            asset_url=lambda filename: url_for(f"{blueprint}.{ASSET_ENDPOINT}", filename=filename),
        ),
        mimetype="text/html",
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def swagger_ui_asset(filename: str) -> Response:
    if filename not in SWAGGER_UI_ASSETS:
        abort(404)
    return send_from_directory(Path(str(swagger_ui_path)), filename)


def _blueprint_name() -> str:
    assert request.blueprint is not None  # the rules above live on a blueprint
    return request.blueprint


class OperationIdPlugin(BasePlugin):
    """Names each operation after its view function (`create_booking`), so generated clients
    get readable method names; an operationId given with `@blp.doc` wins."""

    def operation_helper(
        self,
        path: str | None = None,
        operations: dict[str, dict[str, Any]] | None = None,
        *,
        rule: Rule | None = None,
        **kwargs: Any,
    ) -> None:
        if rule is None or not operations:
            return
        view_name = rule.endpoint.rsplit(".", 1)[-1]
        for operation in operations.values():
            operation.setdefault("operationId", view_name)
