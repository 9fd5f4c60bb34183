"""The p2pdash command: run the app, manage the database, users and API keys."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import click
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.cli_ingest import backfill_group, ingest_command
from app.config import ConfigError, Settings, load_settings
from app.logs import configure_logging, register_secret
from db.embedded import EmbeddedDatabaseError, EmbeddedPostgres
from db.engine import make_engine


@contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Yield settings with a reachable database URL; stop an embedded cluster started here."""
    if not settings.uses_embedded_database:
        yield settings
        return
    cluster = EmbeddedPostgres(settings.data_dir / "pg")
    url = cluster.ensure_running()
    register_secret(cluster.password)
    try:
        yield settings.with_database_url(url)
    finally:
        cluster.stop()


@contextmanager
def migrated(ctx: click.Context) -> Iterator[tuple[Settings, Engine]]:
    """Settings and an engine on the configured database (an embedded cluster started for
    the command if need be), upgraded when P2PDASH_AUTO_MIGRATE is on; disposed after."""
    from db.migrate import upgrade

    with database(ctx.obj["settings"]) as settings:
        engine = make_engine(settings.database_url or "")
        try:
            if settings.auto_migrate:
                upgrade(engine)
            yield settings, engine
        finally:
            engine.dispose()


def _settings(ctx: click.Context) -> Settings:
    return ctx.obj["settings"]


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """p2pdash: real-time crypto P2P and spot market analytics."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    register_secret(settings.secret_key)
    ctx.obj = {"settings": settings}


def serve_app(settings: Settings) -> None:
    """Migrate, make sure an admin exists, then serve until SIGINT or SIGTERM."""
    from app import create_app
    from app.first_run import ensure_admin
    from app.server import serve
    from db.migrate import upgrade

    engine = make_engine(settings.database_url or "")
    if settings.auto_migrate:
        upgrade(engine)
    ensure_admin(engine, settings)
    engine.dispose()
    ready = replace(settings, auto_migrate=False)
    click.echo(f"p2pdash on http://{settings.host}:{settings.port}", err=True)
    serve(ready, lambda: create_app(ready))


@cli.command()
@click.option("--demo-when-offline", is_flag=True,
              help="Run the demo instead when the Binance REST API does not answer.")
@click.pass_context
def run(ctx: click.Context, demo_when_offline: bool) -> None:
    """Serve the dashboard (and ingest, when INGEST_ENABLED) at P2PDASH_HOST:P2PDASH_PORT."""
    from app.cli_demo import exchange_reachable, run_demo

    settings = _settings(ctx)
    if demo_when_offline and not exchange_reachable(settings):
        click.echo("p2pdash: no exchange reachable from here: starting the DEMO on a "
                   "simulated exchange instead", err=True)
        run_demo(settings)
        return
    with database(settings) as ready:
        serve_app(ready)


@cli.group("db")
def db_group() -> None:
    """Database schema: upgrade, downgrade, current revision."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from db.migrate import current_revision, upgrade

    with database(_settings(ctx)) as settings:
        engine = make_engine(settings.database_url or "")
        upgrade(engine, revision)
        click.echo(f"database at revision {current_revision(engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@click.pass_context
def db_downgrade(ctx: click.Context, revision: str) -> None:
    """Undo migrations down to REVISION ('base' drops every table)."""
    from db.migrate import current_revision, downgrade

    with database(_settings(ctx)) as settings:
        engine = make_engine(settings.database_url or "")
        downgrade(engine, revision)
        click.echo(f"database at revision {current_revision(engine) or 'base'}")


@db_group.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Print the database's revision and the newest the code knows."""
    from db.migrate import current_revision, head_revision

    with database(_settings(ctx)) as settings:
        engine = make_engine(settings.database_url or "")
        click.echo(f"database: {current_revision(engine) or 'empty'}; code: {head_revision()}")


from app.cli_users import keys_group, users_group  # noqa: E402  (after cli exists)

cli.add_command(users_group)
cli.add_command(keys_group)
from app.cli_alerts import alerts_group  # noqa: E402  (after cli exists)

cli.add_command(alerts_group)
from app.cli_export import export_command  # noqa: E402  (after cli exists)

cli.add_command(export_command)
from app.cli_demo import demo_command  # noqa: E402  (after cli exists)

cli.add_command(demo_command)
from app.cli_kiosk import kiosk_group  # noqa: E402  (after cli exists)

cli.add_command(kiosk_group)
cli.add_command(backfill_group)
cli.add_command(ingest_command)


def main() -> None:
    """Entry point: errors a user can fix come out as one line and a non-zero exit."""
    try:
        cli(prog_name="p2pdash")
    except ConfigError as error:
        click.echo(f"p2pdash: configuration error: {error}", err=True)
        sys.exit(2)
    except EmbeddedDatabaseError as error:
        click.echo(f"p2pdash: embedded database: {error}", err=True)
        sys.exit(1)
    except OperationalError as error:
        click.echo(f"p2pdash: database unreachable: {str(error.orig).strip()}", err=True)
        sys.exit(1)
