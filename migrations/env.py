"""Alembic environment: bound to the models' metadata."""

from __future__ import annotations

from typing import Any

from alembic import context

from marketplace.db import UTCDateTime, make_engine
from marketplace.migrate import include_object
from marketplace.models import Base

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from marketplace import create_app

    return str(create_app().config["DATABASE_URL"])


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Write the project's UTC datetime type as the plain SQL type it stands on."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_item=render_item,
        compare_type=True,
        include_object=include_object,
        **kwargs,
    )


def run_migrations_offline() -> None:
    configure(url=database_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(database_url())
    with engine.connect() as connection:
        configure(connection=connection, render_as_batch=engine.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
