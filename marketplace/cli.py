"""Command line: `flask --app marketplace db|create-admin|demo ...`."""

from __future__ import annotations

from pathlib import Path

import click
from alembic import command
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from marketplace import migrate
from marketplace.accounts import service as accounts
from marketplace.accounts.models import Role
from marketplace.db import get_database, refresh_statistics
from marketplace.errors import DomainError
from marketplace.geo.geocoding import import_centroid_file, load_builtin_london_outcodes
from marketplace.practitioners.match_index import reindex_all, reindex_if_empty


def _database_url() -> str:
    return str(current_app.config["DATABASE_URL"])


@click.group("db", cls=AppGroup, help="Database migrations (Alembic).")
def db_group() -> None:
    pass


@db_group.command("upgrade", help="Migrate the database to a revision (default: the newest).")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    migrate.upgrade(_database_url(), revision)
    if revision == "head":
        with get_database().session_scope() as session:
            load_builtin_london_outcodes(session)
            reindex_if_empty(session)
            refresh_statistics(session)


@db_group.command("reindex", help="Rebuild the match entries from every practitioner's profile.")
def db_reindex() -> None:
    with get_database().session_scope() as session:
        count = reindex_all(session)
    click.echo(f"{count} match entries.")


@db_group.command("downgrade", help="Migrate the database back to a revision, e.g. base.")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    migrate.downgrade(_database_url(), revision)


@db_group.command("current", help="Show the database's revision.")
def db_current() -> None:
    command.current(migrate.alembic_config(_database_url()), verbose=True)


@db_group.command("revision", help="Write a new migration, compared against the models.")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    command.revision(migrate.alembic_config(_database_url()), message=message, autogenerate=True)


@click.command("create-admin", help="Make an admin account (admins are never made over HTTP).")
@click.argument("email")
@click.option("--full-name", default="Administrator", show_default=True)
@click.option(
    "--password",
    envvar="MARKETPLACE_ADMIN_PASSWORD",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Prompted for unless MARKETPLACE_ADMIN_PASSWORD is set.",
)
@with_appcontext
def create_admin(email: str, full_name: str, password: str) -> None:
    try:
        with get_database().session_scope() as session:
            user = accounts.create_user(
                session, email=email, password=password, full_name=full_name, role=Role.ADMIN
            )
            user_id = user.id
    except DomainError as exc:
        raise click.ClickException(_describe(exc)) from exc
    click.echo(f"Admin {user_id} created.")


@click.group("demo", cls=AppGroup, help="Demo data for trying the service.")
def demo_group() -> None:
    pass


@demo_group.command("load", help="Load the demo accounts (skips those that exist).")
def demo_load() -> None:
    from marketplace.clock import business_today
    from marketplace.demo import DEMO_PASSWORD, load_demo_data

    with get_database().session_scope() as session:
        logins = load_demo_data(session, business_today())
        refresh_statistics(session)
    click.echo(f"Demo logins (password for all: {DEMO_PASSWORD}):")
    for login in logins:
        note = f"  ({login.note})" if login.note else ""
        click.echo(f"  {login.role:<13} {login.email}{note}")


@click.group("geo", cls=AppGroup, help="Postcode geography.")
def geo_group() -> None:
    pass


@geo_group.command("import", help="Import postcode or outcode centroids from a CSV file.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def geo_import(path: Path) -> None:
    """Reads the ONS Postcode Directory layout (pcds,lat,long; terminated rows skipped) or an
    outcode CSV (postcode,latitude,longitude). Importing the same file again changes nothing."""
    try:
        with get_database().session_scope() as session:
            layout, count = import_centroid_file(session, path)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(f"{path.name}: {exc}") from exc
    click.echo(f"Imported {count} centroids ({layout} layout) from {path.name}.")


def _describe(error: DomainError) -> str:
    fields = error.details.get("fields", {})
    problems = [f"{name}: {' '.join(messages)}" for name, messages in fields.items()]
    return "; ".join(problems) or error.message


def register_commands(app: Flask) -> None:
    app.cli.add_command(db_group)
    app.cli.add_command(create_admin)
    app.cli.add_command(demo_group)
    app.cli.add_command(geo_group)
