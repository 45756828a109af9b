"""Database plumbing: the declarative base, one engine per app, one session per request or task.

Services receive a `Session` and never commit; the boundary (request, task, CLI command) does,
through `session_scope` or `request_session`.
"""

from __future__ import annotations

import enum
import logging
import math
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from flask import Flask, current_app, g
from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from marketplace.errors import database_unavailable, replace_with_database_unavailable

log = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database (SQLite stores no offset, so it is restored)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_class: type[enum.StrEnum], name: str, length: int = 20) -> Enum:
    """A string column restricted to an enum's values by a CHECK constraint (no native type)."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [member.value for member in members],
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _ensure_math_functions(dbapi_connection: Any, cursor: Any) -> None:
    """Matching ranks in SQL with sqrt and floor; SQLite has them only when built with its maths
    functions, so older or slimmer builds get Python's."""
    try:
        cursor.execute("SELECT sqrt(4.0), floor(1.5)")
    except sqlite3.OperationalError:
        dbapi_connection.create_function("sqrt", 1, _sqrt_or_null, deterministic=True)
        dbapi_connection.create_function("floor", 1, _floor_or_null, deterministic=True)


def _sqrt_or_null(value: float | None) -> float | None:
    return None if value is None or value < 0 else math.sqrt(value)


def _floor_or_null(value: float | None) -> float | None:
    return None if value is None else float(math.floor(value))


def _configure_sqlite(engine: Engine) -> None:
    """Foreign keys on, and transactions begun by SQLAlchemy rather than the pysqlite driver.

    pysqlite's own transaction handling breaks SAVEPOINT and cannot begin an IMMEDIATE
    transaction; this is SQLAlchemy's documented recipe for taking it over.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers do not wait for the writer
        _ensure_math_functions(dbapi_connection, cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


def make_engine(url: str, *, echo: bool = False) -> Engine:
    # Parameters stay out of error messages and logs (they hold emails, names, hashes).
    engine = create_engine(
        url, echo=echo, hide_parameters=not echo, pool_pre_ping=not url.startswith("sqlite")
    )
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    return engine


class Database:
    """The engine and session factory of one application."""

    def __init__(
        self, url: str, *, echo: bool = False, settings: Mapping[str, Any] | None = None
    ) -> None:
        """`settings` are the application's, for services to read from their session's `info`
        (services never read Flask's configuration)."""
        self.engine = make_engine(url, echo=echo)
        bind = self.engine
        if self.engine.dialect.name == "sqlite":
            # SQLite allows one writer: take the write lock when a transaction begins, so a
            # transaction that reads then writes waits its turn instead of failing "locked".
            bind = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.session_factory: sessionmaker[Session] = sessionmaker(
            bind=bind, expire_on_commit=False, info={"settings": settings or {}}
        )

    @contextmanager
    def session_scope(self) -> Iterator[Session]:
        """A unit of work for tasks and commands: commit on success, roll back on error."""
        session = self.session_factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def refresh_statistics(session: Session) -> None:
    """Query-planner statistics on SQLite, which gathers none by itself (PostgreSQL's
    autovacuum does): without them it reads every listed practitioner to find a page of
    matching candidates. Bounded (a few hundred rows per index), so quick on a big file."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("PRAGMA analysis_limit=400"))
        session.execute(text("ANALYZE"))


def get_database(app: Flask | None = None) -> Database:
    database: Database = (app or current_app).extensions["database"]
    return database


def request_session() -> Session:
    """The session of the current request, opened on first use."""
    if "db_session" not in g:
        g.db_session = get_database().session_factory()
    session: Session = g.db_session
    return session


def _register(session: Session, outcome: str, callback: Callable[[], object]) -> None:
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault("outcome_callbacks", []).append((transaction, outcome, callback))


def insert_on_conflict(session: Session, entity: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """An INSERT for `entity` that can say ON CONFLICT (both databases support it)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(entity)
    return sqlite.insert(entity)


def after_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run `callback` once the session's transaction has committed (never if it, or the
    SAVEPOINT the callback was registered in, rolls back).

    Used to enqueue Celery tasks only for changes that were really written. A failing callback
    is logged and does not undo or hide the commit (the outbox row stays to be sent later).
    """
    _register(session, "commit", callback)


def after_rollback(session: Session, callback: Callable[[], object]) -> None:
    """Run `callback` if the work registered now is rolled back (e.g. remove a file written
    for a row that will never exist)."""
    _register(session, "rollback", callback)


def _within(transaction: Any, ancestor: Any) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


def _run(callbacks: list[Callable[[], object]]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("transaction outcome callback failed")


@event.listens_for(Session, "after_commit")
def _run_after_commit_callbacks(session: Session) -> None:
    registered = session.info.pop("outcome_callbacks", [])
    _run([callback for _, outcome, callback in registered if outcome == "commit"])


@event.listens_for(Session, "after_soft_rollback")
def _run_after_rollback_callbacks(session: Session, previous: Any) -> None:
    registered = session.info.get("outcome_callbacks", [])
    undone = [entry for entry in registered if _within(entry[0], previous)]
    session.info["outcome_callbacks"] = [entry for entry in registered if entry not in undone]
    _run([callback for _, outcome, callback in undone if outcome == "rollback"])


def init_database(app: Flask) -> None:
    app.extensions["database"] = Database(
        app.config["DATABASE_URL"], echo=app.config["SQL_ECHO"], settings=app.config
    )

    @app.after_request
    def _commit_request_session(response: Any) -> Any:
        session: Session | None = g.pop("db_session", None)
        if session is None:
            return response
        try:
            if response.status_code < 400:
                session.commit()
            else:
                session.rollback()
        except Exception as exc:
            # PostgreSQL went away before the commit was acknowledged: the answer built for the
            # change must not go out. (Rolling back an error answer on a dead connection has
            # nothing to undo, so that answer stands.) The dead connection is invalidated by
            # SQLAlchemy, so the next request gets a fresh one.
            if not database_unavailable(exc):
                raise
            if response.status_code < 400:
                response = replace_with_database_unavailable(response, exc)
        finally:
            session.close()
        return response

    @app.teardown_request
    def _close_request_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.rollback()
            session.close()
