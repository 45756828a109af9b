"""Configuration read from the environment, with safe defaults for the embedded setup."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "production", "testing")


class ConfigurationError(RuntimeError):
    """The application cannot start with the configuration it was given."""


def _env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number, not {value!r}") from exc


def load_secret_key(environ: Mapping[str, str], env: str, instance_path: Path) -> str:
    """SECRET_KEY from the environment; in development one is generated once and kept."""
    key = environ.get("SECRET_KEY", "")
    if key:
        return key
    if env == "production":
        raise ConfigurationError("SECRET_KEY must be set when MARKETPLACE_ENV=production")
    key_file = instance_path / "secret_key"
    instance_path.mkdir(parents=True, exist_ok=True)
    try:  # created readable by the owner only, and by one process if several start at once
        descriptor = os.open(key_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    key = secrets.token_hex(32)
    with os.fdopen(descriptor, "w") as out:
        out.write(key)
    return key


def build_config(instance_path: Path, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting the application reads, from environment variables."""
    environ = os.environ if environ is None else environ
    env = environ.get("MARKETPLACE_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigurationError(f"MARKETPLACE_ENV must be one of {', '.join(ENVIRONMENTS)}")
    redis_url = environ.get("REDIS_URL", "")
    database_url = environ.get("DATABASE_URL") or f"sqlite:///{instance_path / 'marketplace.db'}"
    broker_url = (
        environ.get("CELERY_BROKER_URL")
        or redis_url
        or f"sqla+sqlite:///{instance_path / 'broker.db'}"
    )
    development = env == "development"
    if env == "production" and _env_bool(environ, "SQL_ECHO", False):
        raise ConfigurationError("SQL_ECHO logs query values (personal data): not in production")
    if environ.get("LOG_FORMAT", "plain") not in ("plain", "json"):
        raise ConfigurationError("LOG_FORMAT must be plain or json")
    if environ.get("SMS_BACKEND", "file") not in ("file", "twilio"):
        raise ConfigurationError("SMS_BACKEND must be file or twilio")
    _check_evidence_storage(environ)
    absolute_hours = _env_int(environ, "SESSION_ABSOLUTE_HOURS", 12)
    sender = environ.get("MAIL_DEFAULT_SENDER", "bookings@localhost")
    return {
        "ENV_NAME": env,
        "SECRET_KEY": load_secret_key(environ, env, instance_path),
        "DATABASE_URL": database_url,
        "SQL_ECHO": _env_bool(environ, "SQL_ECHO", False),
        "REDIS_URL": redis_url,
        # How many proxies in front set X-Forwarded-For (rate limits key on the client address).
        "PROXY_FIX_X_FOR": _env_int(environ, "PROXY_FIX_X_FOR", 0),
        "MAX_CONTENT_LENGTH": _env_int(environ, "MAX_CONTENT_LENGTH", 1024 * 1024),
        # Geocoding: the centroid table, or postcodes.io for full postcodes (answers are kept).
        "GEOCODER": environ.get("GEOCODER", "table"),
        "POSTCODES_IO_URL": environ.get("POSTCODES_IO_URL", "https://api.postcodes.io"),
        # Uploaded evidence: outside any folder the web server serves.
        "EVIDENCE_DIR": environ.get("EVIDENCE_DIR") or str(instance_path / "evidence"),
        # ... or an S3-compatible bucket shared by every web machine (credentials from the
        # standard AWS variables; a custom endpoint for MinIO and the like).
        "EVIDENCE_STORAGE": environ.get("EVIDENCE_STORAGE") or "filesystem",
        "EVIDENCE_S3_BUCKET": environ.get("EVIDENCE_S3_BUCKET", ""),
        "EVIDENCE_S3_ENDPOINT_URL": environ.get("EVIDENCE_S3_ENDPOINT_URL", ""),
        "EVIDENCE_S3_REGION": environ.get("EVIDENCE_S3_REGION", ""),
        # Cookies: HttpOnly and SameSite=Lax always, Secure outside development.
        "SESSION_COOKIE_NAME": "marketplace_session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": _env_bool(environ, "SESSION_COOKIE_SECURE", not development),
        "LOG_FORMAT": environ.get("LOG_FORMAT", "json" if env == "production" else "plain"),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").upper(),
        # HTTPS only, for a year, once in production (0: no Strict-Transport-Security header).
        "HSTS_SECONDS": _env_int(environ, "HSTS_SECONDS", 31_536_000 if env == "production" else 0),
        # Other origins (e.g. a web front end on its own domain) allowed to post with the cookie.
        "TRUSTED_ORIGINS": [
            o.strip() for o in environ.get("TRUSTED_ORIGINS", "").split(",") if o.strip()
        ],
        "SESSION_IDLE_MINUTES": _env_int(environ, "SESSION_IDLE_MINUTES", 30),
        "SESSION_ABSOLUTE_HOURS": absolute_hours,
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=absolute_hours),
        # Rate limits (Flask-Limiter): Redis storage when REDIS_URL is set, memory otherwise.
        "RATELIMIT_ENABLED": _env_bool(environ, "RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        # A second at most to reach Redis: when it is down, limited requests answer 503 quickly.
        "RATELIMIT_STORAGE_OPTIONS": (
            {"socket_connect_timeout": 1, "socket_timeout": 1} if redis_url else {}
        ),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Never count in memory instead: each process would keep its own counters, forgotten at
        # every restart, and an error of any kind (not only Redis being down) switched a process
        # over. Limited requests fail closed (503) while Redis is down; see
        # docs/accounts-and-security.md.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": False,
        "RATELIMIT_SWALLOW_ERRORS": False,
        # Failed logins of one account from one client address (and wrong current passwords of
        # one signed-in account): an hour's share well under the account's own budget below.
        "RATELIMIT_FAILED_LOGIN": environ.get(
            "RATELIMIT_FAILED_LOGIN", "10 per minute;20 per hour"
        ),
        # ASVS V2.2.1: at most 100 failed attempts an hour on one account, from anywhere.
        "RATELIMIT_FAILED_LOGIN_ACCOUNT": environ.get(
            "RATELIMIT_FAILED_LOGIN_ACCOUNT", "100 per hour"
        ),
        # After this many failures of an account in a row, a site (IPv4 address, IPv6 /48) that
        # has failed on it waits 1, 2, 4 ... seconds, at most LOGIN_DELAY_MAX_SECONDS, between
        # attempts; a site new to the account does not (its owner gets in; see
        # docs/accounts-and-security.md).
        "LOGIN_DELAY_AFTER_FAILURES": _env_int(environ, "LOGIN_DELAY_AFTER_FAILURES", 10),
        "LOGIN_DELAY_MAX_SECONDS": _env_int(environ, "LOGIN_DELAY_MAX_SECONDS", 300),
        # Failed logins from one client address, whatever the account: only a ceiling, since
        # many people may share the address (a care home or a hospital behind one NAT).
        "RATELIMIT_FAILED_LOGIN_ADDRESS": environ.get(
            "RATELIMIT_FAILED_LOGIN_ADDRESS", "300 per hour"
        ),
        "RATELIMIT_REGISTER": environ.get("RATELIMIT_REGISTER", "10 per minute;50 per hour"),
        "RATELIMIT_CARER_INVITES": environ.get("RATELIMIT_CARER_INVITES", "20 per day"),
        # Bookings: cancelling closer to the start than this is recorded as late.
        "LATE_CANCELLATION_HOURS": _env_int(environ, "LATE_CANCELLATION_HOURS", 24),
        # Where people open the site: links in messages (a visit's page, a carer's invitation).
        "PUBLIC_BASE_URL": _public_base_url(environ),
        # Video visits: a random room name is appended to this (a Jitsi server, say).
        "VIDEO_BASE_URL": environ.get("VIDEO_BASE_URL", "https://meet.jit.si"),
        # Reminders before a visit, hours ahead; the late one also by SMS to those with a phone.
        "REMINDER_EARLY_HOURS": _env_int(environ, "REMINDER_EARLY_HOURS", 24),
        "REMINDER_LATE_HOURS": _env_int(environ, "REMINDER_LATE_HOURS", 2),
        "NO_SHOW_GRACE_MINUTES": _env_int(environ, "NO_SHOW_GRACE_MINUTES", 15),
        "REMINDER_SMS": _env_bool(environ, "REMINDER_SMS", True),
        # Outbox delivery: attempts before `failed`, the first retry's delay (doubled after each
        # failure), how long a sender owns the row it claimed, how long a row handed to the
        # broker waits to be claimed before the dispatcher hands it out again (its task may
        # have been lost with the broker), how often the beat dispatches.
        "NOTIFICATION_MAX_ATTEMPTS": _env_int(environ, "NOTIFICATION_MAX_ATTEMPTS", 5),
        "NOTIFICATION_RETRY_SECONDS": _env_int(environ, "NOTIFICATION_RETRY_SECONDS", 60),
        "NOTIFICATION_LEASE_SECONDS": _env_int(environ, "NOTIFICATION_LEASE_SECONDS", 300),
        "NOTIFICATION_HANDOVER_SECONDS": _env_int(environ, "NOTIFICATION_HANDOVER_SECONDS", 60),
        "NOTIFICATION_DISPATCH_SECONDS": _env_int(environ, "NOTIFICATION_DISPATCH_SECONDS", 60),
        # SMS: text files in instance/outbox/ by default, or a Twilio-style HTTP API.
        "SMS_BACKEND": environ.get("SMS_BACKEND", "file"),
        "TWILIO_API_URL": environ.get("TWILIO_API_URL", "https://api.twilio.com"),
        "TWILIO_ACCOUNT_SID": environ.get("TWILIO_ACCOUNT_SID", ""),
        "TWILIO_AUTH_TOKEN": environ.get("TWILIO_AUTH_TOKEN", ""),
        "TWILIO_FROM": environ.get("TWILIO_FROM", ""),
        # Mail: SMTP when MAIL_SERVER is set, else .eml files in instance/outbox/.
        "MAIL_SERVER": environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _env_int(environ, "MAIL_PORT", 587),
        "MAIL_USE_TLS": _env_bool(environ, "MAIL_USE_TLS", True),
        "MAIL_USERNAME": environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": environ.get("MAIL_PASSWORD", ""),
        "MAIL_DEFAULT_SENDER": sender,
        # The right-hand side of every Message-ID: the sender's domain unless told otherwise.
        "MAIL_MESSAGE_ID_DOMAIN": environ.get("MAIL_MESSAGE_ID_DOMAIN") or _domain_of(sender),
        "CELERY": {
            "broker_url": broker_url,
            "result_backend": environ.get("CELERY_RESULT_BACKEND") or None,
            "task_ignore_result": True,
            "task_serializer": "json",
            "result_serializer": "json",
            "accept_content": ["json"],
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": _broker_transport_options(broker_url),
            "broker_connection_retry_on_startup": True,
            "broker_connection_timeout": 3,
            "timezone": "UTC",
            "enable_utc": True,
            "beat_schedule_filename": str(instance_path / "celerybeat-schedule"),
        },
        # flask-smorest / OpenAPI
        "API_TITLE": "Practitioner marketplace",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api",
        "OPENAPI_JSON_PATH": "v1/openapi.json",
        # Swagger UI's files are served by the app itself (marketplace/apidocs.py), not a CDN.
        "OPENAPI_SWAGGER_UI_PATH": "docs",
    }


def _check_evidence_storage(environ: Mapping[str, str]) -> None:
    storage = environ.get("EVIDENCE_STORAGE") or "filesystem"
    if storage not in ("filesystem", "s3"):
        raise ConfigurationError("EVIDENCE_STORAGE must be filesystem or s3")
    if storage == "s3" and not environ.get("EVIDENCE_S3_BUCKET"):
        raise ConfigurationError("EVIDENCE_S3_BUCKET must be set when EVIDENCE_STORAGE=s3")


def _public_base_url(environ: Mapping[str, str]) -> str:
    url = environ.get("PUBLIC_BASE_URL") or "http://127.0.0.1:5000"
    if not url.startswith(("https://", "http://")):
        raise ConfigurationError("PUBLIC_BASE_URL must start with https:// (or http://)")
    return url.rstrip("/")


def _domain_of(address: str) -> str:
    """The domain of an address, also of one written `Name <user@domain>`."""
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def _broker_transport_options(broker_url: str) -> dict[str, Any]:
    """Redis redelivers a message nobody acknowledged after the visibility timeout: far longer
    than any task runs (a send task takes seconds), so a slow task is never run twice. The
    embedded SQLAlchemy broker takes no such option (it would reach create_engine)."""
    if broker_url.startswith(("redis://", "rediss://")):
        return {"visibility_timeout": 2 * 3600}
    return {}
