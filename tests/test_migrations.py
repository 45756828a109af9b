"""Migrations run both ways on the database under test, and never drift from the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from marketplace import migrate
from marketplace.db import make_engine
from marketplace.models import Base
from tests.support.database import fresh_database_url


def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = fresh_database_url(tmp_path, "marketplace_test_migrations")
    migrate.upgrade(url)
    assert set(Base.metadata.tables) <= table_names(url)
    migrate.downgrade(url, "base")
    assert table_names(url) == {"alembic_version"}
    migrate.upgrade(url)
    assert set(Base.metadata.tables) <= table_names(url)


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            options = {"compare_type": True, "include_object": migrate.include_object}
            context = MigrationContext.configure(connection, opts=options)
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
