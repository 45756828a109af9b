"""The back office in the browser: server-rendered pages under /admin over the same services as
the admin API (no rule is written twice here).

Pages answer errors as pages, never the API's JSON. A form that fails is shown again with the
message next to its field and an error status, so the request's transaction rolls back; one
that succeeds redirects with a flash message (post, redirect, get).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf
from werkzeug.exceptions import HTTPException, InternalServerError

from marketplace.accounts import service as accounts
from marketplace.accounts.auth import counted_password_check, current_account, log_in, log_out
from marketplace.accounts.models import Role, User
from marketplace.admin import service
from marketplace.admin.forms import ActionForm, ApproveForm, ReasonForm, RejectForm, SignInForm
from marketplace.audit import service as audit
from marketplace.clock import BUSINESS_ZONE, business_today
from marketplace.db import request_session
from marketplace.errors import (
    DomainError,
    Forbidden,
    ValidationFailed,
    http_error_response,
    unexpected_error_response,
)
from marketplace.http_guards import accepts_forms
from marketplace.notifications import service as notifications
from marketplace.notifications.models import NotificationStatus
from marketplace.practitioners import service as practitioners
from marketplace.practitioners.evidence_download import send_evidence
from marketplace.practitioners.models import CREDENTIAL_LABELS, CredentialStatus, ListingStatus

pages = Blueprint("admin_pages", __name__, url_prefix="/admin")
pages.add_app_template_global(generate_csrf, "csrf_token")  # for forms that are only a button

PAGE_SIZE = 25
HCPC_REGISTER_URL = "https://www.hcpc-uk.org/check-the-register/"
# No scripts at all; evidence previews are same-origin images and sandboxed frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=enum.Enum)


def admin_page(view: F) -> F:
    """Admins only: anyone signed out goes to the sign-in page; anyone else gets 403."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated:
            # A form posted after the session ended cannot be replayed: start from the queue.
            target = request.path if request.method == "GET" else None
            return redirect(url_for(".sign_in", next=target))
        if current_user.role is not Role.ADMIN:
            raise Forbidden("The back office is for admins only.")
        return view(*args, **kwargs)

    return cast(F, wrapper)


@pages.after_request
def _page_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response


@pages.errorhandler(DomainError)
def _domain_error(error: DomainError) -> tuple[str, int]:
    fields = error.details.get("fields")
    return _error_page(error.status, error.message, fields)


def _error_page(status: int, message: str, fields: Any = None) -> tuple[str, int]:
    return render_template(
        "admin/error.html", status=status, message=message, fields=fields
    ), status


def init_pages(app: Flask) -> None:
    """Register the pages, and answer errors under /admin (an unknown page, a wrong method,
    a crash) as pages too; everywhere else the API's JSON handlers stay."""
    app.register_blueprint(pages)
    for kind, api_handler in (
        (HTTPException, http_error_response),
        (InternalServerError, unexpected_error_response),
        (Exception, unexpected_error_response),
    ):
        app.register_error_handler(kind, _page_or(api_handler))


def _page_or(api_handler: Callable[[Any], Response]) -> Callable[[Any], Any]:
    def handler(error: Exception) -> Any:
        response = api_handler(error)  # it also logs what crashed
        if request.path != "/admin" and not request.path.startswith("/admin/"):
            return response
        if isinstance(error, HTTPException) and response.status_code < 500:
            return _error_page(response.status_code, error.description or "Request failed.")
        return _error_page(response.status_code, "Something went wrong on our side.")

    return handler


@pages.app_template_filter("london")
def _london_time(moment: datetime) -> str:
    """An instant as the business's wall-clock time: '24 Nov 2026 10:05 GMT'."""
    local = moment.astimezone(BUSINESS_ZONE)
    return f"{local.day} {local:%b %Y %H:%M %Z}"


@pages.app_template_global()
def next_page_url(cursor: str) -> str:
    """This page again with the filters kept, one page on."""
    arguments = {**request.args.to_dict(), **(request.view_args or {}), "cursor": cursor}
    return url_for(request.endpoint or ".queue", **arguments)


def _choice(kind: type[E], name: str, default: E | None) -> E | None:
    """A query argument that must be one of an enum's values ('' for any)."""
    value = request.args.get(name)
    if value is None:
        return default
    if value == "":
        return None
    try:
        return kind(value)
    except ValueError:
        raise ValidationFailed.for_field(name, f"Unknown {name}: {value}.") from None


def _show_field_errors(form: FlaskForm, error: ValidationFailed) -> None:
    """The service's field errors next to the form's fields (others above the form)."""
    for name, messages in error.details.get("fields", {}).items():
        field = getattr(form, name, None)
        if field is not None:
            field.errors = [*field.errors, *messages]
        else:
            form.form_errors.extend(messages)
    if not error.details.get("fields"):
        form.form_errors.append(error.message)


# --- signing in and out ------------------------------------------------------------------------


def _next_page() -> str:
    target = request.args.get("next", "")
    # Only a path inside the back office: never an open redirect.
    if target.startswith("/admin") and "//" not in target and "\\" not in target:
        return target
    return url_for(".queue")


@pages.route("/login", methods=["GET", "POST"])
@accepts_forms
def sign_in() -> Any:
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        email, password = form.email.data or "", form.password.data or ""

        def admin_with_this_password() -> User:
            user = accounts.authenticate(request_session(), email, password)
            if user.role is not Role.ADMIN:
                # The same answer as a wrong password, and counted like one: this page must
                # not tell anyone that a password is right for an account that is not an admin.
                raise accounts.InvalidCredentials()
            return user

        try:
            # The same budget of guesses as the API login (one per account, however presented).
            user = counted_password_check(email, admin_with_this_password)
        except DomainError as error:
            form.form_errors.append(error.message)
            return render_template("admin/sign_in.html", form=form), error.status, error.headers
        log_in(user)
        flash(f"Signed in as {user.email}.", "success")
        return redirect(_next_page())
    if form.errors:
        status = 400
    return render_template("admin/sign_in.html", form=form), status


@pages.route("/logout", methods=["POST"])
@accepts_forms
@admin_page
def sign_out() -> Any:
    if not ActionForm().validate_on_submit():
        raise Forbidden("The form had expired: sign out again.")
    log_out()
    flash("Signed out.", "success")
    return redirect(url_for(".sign_in"))


# --- credentials -------------------------------------------------------------------------------


@pages.route("/")
@admin_page
def home() -> Any:
    return redirect(url_for(".queue"))


@pages.route("/credentials")
@admin_page
def queue() -> str:
    status = (
        _choice(CredentialStatus, "status", CredentialStatus.PENDING) or CredentialStatus.PENDING
    )
    page = service.credentials_queue(
        request_session(), status, PAGE_SIZE, request.args.get("cursor")
    )
    return render_template(
        "admin/queue.html",
        page=page,
        status=status,
        statuses=list(CredentialStatus),
        labels=CREDENTIAL_LABELS,
    )


def _credential_page(
    credential_id: uuid.UUID,
    approve: ApproveForm | None = None,
    reject: RejectForm | None = None,
    status: int = 200,
    problem: str | None = None,
) -> tuple[str, int]:
    credential = service.credential_for_review(request_session(), credential_id)
    html = render_template(
        "admin/credential.html",
        credential=credential,
        labels=CREDENTIAL_LABELS,
        approve=approve or ApproveForm(formdata=None),
        reject=reject or RejectForm(formdata=None),
        register_url=HCPC_REGISTER_URL,
        problem=problem,
    )
    return html, status


@pages.route("/credentials/<uuid:credential_id>")
@admin_page
def credential(credential_id: uuid.UUID) -> tuple[str, int]:
    return _credential_page(credential_id)


@pages.route("/credentials/<uuid:credential_id>/approve", methods=["POST"])
@accepts_forms
@admin_page
def approve(credential_id: uuid.UUID) -> Any:
    form = ApproveForm()
    return _decide(
        credential_id,
        form,
        approve=form,
        decision=service.Decision.APPROVE,
        expires_on=form.expires_on.data,
        register_check=_text(form.register_check.data),
    )


@pages.route("/credentials/<uuid:credential_id>/reject", methods=["POST"])
@accepts_forms
@admin_page
def reject(credential_id: uuid.UUID) -> Any:
    form = RejectForm()
    return _decide(
        credential_id,
        form,
        reject=form,
        decision=service.Decision.REJECT,
        reason=_text(form.reason.data),
    )


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


def _decide(
    credential_id: uuid.UUID,
    form: FlaskForm,
    *,
    approve: ApproveForm | None = None,
    reject: RejectForm | None = None,
    **decision: Any,
) -> Any:
    if not form.validate_on_submit():
        return _credential_page(credential_id, approve, reject, status=422)
    fields = {"reason": None, "expires_on": None, "register_check": None} | decision
    try:
        credential = service.decide_credential(
            request_session(), current_account(), credential_id, today=business_today(), **fields
        )
    except ValidationFailed as error:
        _show_field_errors(form, error)
        return _credential_page(credential_id, approve, reject, status=422)
    except DomainError as error:  # decided meanwhile, or the number is held elsewhere
        request_session().rollback()  # nothing half-changed is shown as if it were stored
        return _credential_page(credential_id, status=error.status, problem=error.message)
    name = credential.practitioner.user.full_name
    flash(f"{name}: credential {credential.status.value}.", "success")
    return redirect(url_for(".queue"))


@pages.route("/credentials/<uuid:credential_id>/evidence/<uuid:evidence_id>")
@admin_page
def evidence(credential_id: uuid.UUID, evidence_id: uuid.UUID) -> Response:
    """Each view of a file is audited; `?download=1` saves it instead of showing it."""
    found = practitioners.open_evidence(
        request_session(), current_account(), credential_id, evidence_id
    )
    # Framed by the credential page only, under the sandbox policy every evidence file has (the
    # frame is sandboxed too); the pages' own policy would not sandbox it.
    return send_evidence(
        found, as_attachment=request.args.get("download") == "1", framed_by_self=True
    )


# --- practitioners -----------------------------------------------------------------------------


def _practitioners_page(
    failed: tuple[uuid.UUID, ReasonForm] | None = None, status: int = 200
) -> Any:
    listing = _choice(ListingStatus, "status", None)
    suspended = {"yes": True, "no": False}.get(request.args.get("suspended", ""))
    page = service.practitioners_for_admins(
        request_session(), listing, suspended, PAGE_SIZE, request.args.get("cursor")
    )
    html = render_template(
        "admin/practitioners.html",
        page=page,
        listing=listing,
        statuses=list(ListingStatus),
        suspended=request.args.get("suspended", ""),
        failed=failed,
    )
    return html, status


@pages.route("/practitioners")
@admin_page
def practitioner_list() -> Any:
    return _practitioners_page()


@pages.route(
    "/practitioners/<uuid:practitioner_id>/<any(suspend, reinstate):change>", methods=["POST"]
)
@accepts_forms
@admin_page
def change_suspension(practitioner_id: uuid.UUID, change: str) -> Any:
    form = ReasonForm()
    if not form.validate_on_submit():
        return _practitioners_page((practitioner_id, form), status=422)
    act = service.suspend_practitioner if change == "suspend" else service.reinstate_practitioner
    try:
        practitioner = act(
            request_session(),
            current_account(),
            practitioner_id,
            _text(form.reason.data) or "",
            business_today(),
        )
    except DomainError as error:
        form.form_errors.append(error.message)
        return _practitioners_page((practitioner_id, form), status=error.status)
    done = "suspended" if change == "suspend" else "reinstated"
    flash(f"{practitioner.user.full_name} is {done}.", "success")
    # The form's URL carries the list's filters and page: back to that same list.
    filters: dict[str, Any] = request.args.to_dict()
    return redirect(url_for(".practitioner_list", **filters))


# --- notifications and the audit log -----------------------------------------------------------


@pages.route("/notifications")
@admin_page
def notification_list() -> str:
    status = _choice(NotificationStatus, "status", NotificationStatus.FAILED)
    page = notifications.notifications_with_status(
        request_session(), status, PAGE_SIZE, request.args.get("cursor")
    )
    return render_template(
        "admin/notifications.html", page=page, status=status, statuses=list(NotificationStatus)
    )


@pages.route("/notifications/<uuid:notification_id>/retry", methods=["POST"])
@accepts_forms
@admin_page
def retry_notification(notification_id: uuid.UUID) -> Any:
    if not ActionForm().validate_on_submit():
        raise Forbidden("The form had expired: try again.")
    service.retry_notification(request_session(), current_account(), notification_id)
    flash("The message will be sent again.", "success")
    return redirect(url_for(".notification_list"))


@pages.route("/audit")
@admin_page
def audit_log() -> str:
    subject_id = request.args.get("subject_id", "").strip()
    try:
        subject = uuid.UUID(subject_id) if subject_id else None
    except ValueError:
        raise ValidationFailed.for_field("subject_id", "Not an id.") from None
    page = audit.audit_entries(
        request_session(),
        subject_type=request.args.get("subject_type", "").strip() or None,
        subject_id=subject,
        action=request.args.get("action", "").strip() or None,
        limit=PAGE_SIZE,
        cursor=request.args.get("cursor"),
    )
    return render_template("admin/audit.html", page=page, args=request.args)
