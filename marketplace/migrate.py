"""Alembic, driven from Python: the CLI's `db` commands and the tests use these."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config


def migrations_dir() -> Path:
    """`migrations/` beside the package in a checkout, else in the working directory."""
    beside_package = Path(__file__).resolve().parent.parent / "migrations"
    if beside_package.is_dir():
        return beside_package
    return Path.cwd() / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


# Indexes the models cannot express portably, made by hand in their migration (PostgreSQL only).
HAND_MADE_INDEXES = frozenset({"ix_match_entries_reach", "ix_match_entries_video"})


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Autogenerate's filter: leave the hand-made indexes alone."""
    return not (type_ == "index" and name in HAND_MADE_INDEXES)
