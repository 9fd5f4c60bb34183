"""`p2pdash kiosk ...`: wall screen devices and their playlists from the command line.

`create` and `link` print the setup link alone on the last line (shown once: only its hash
is stored), so `p2pdash kiosk create lobby | tail -n1` gives a script the link.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy import Engine

from app.config import Settings
from app.kiosk import devices, playlists
from db import kiosk as store


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _engine(ctx: click.Context) -> Iterator[tuple[Engine, Settings]]:
    """An engine on the configured database; device and playlist errors end the command."""
    from app.cli import migrated

    with migrated(ctx) as (settings, engine):
        try:
            yield engine, settings
        except (devices.DeviceError, playlists.PlaylistError) as error:
            raise click.ClickException(str(error)) from None


def device_state(device: dict[str, Any]) -> str:
    """What a device is doing: revoked, signed in, or waiting for its (unexpired) link."""
    if device["revoked_at"]:
        return "revoked"
    if device["setup_used_at"]:
        return "signed in"
    expires = device["setup_expires_at"]
    return "link expired" if expires and expires <= datetime.now(UTC) else "awaiting setup"


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


@click.group("kiosk")
def kiosk_group() -> None:
    """Wall screens: create, list, link, set-playlist, revoke; playlists."""


@kiosk_group.command("create")
@click.argument("name")
@click.option("--playlist", default=None, help="what it shows (default: the wall view)")
@click.pass_context
def kiosk_create(ctx: click.Context, name: str, playlist: str | None) -> None:
    """Create device NAME and print its setup link (alone on the last line, shown once)."""
    with _engine(ctx) as (engine, settings):
        device, link = devices.create(engine, settings, _actor(), name, playlist)
    click.echo(f"created kiosk device {device['name']} showing "
               f"{device['playlist'] or playlists.WALL}; open this link on the screen within "
               f"{settings.kiosk.link_hours} h (it works once):")
    click.echo(link)


@kiosk_group.command("link")
@click.argument("name")
@click.pass_context
def kiosk_link(ctx: click.Context, name: str) -> None:
    """Print a new setup link for NAME (the old link and the old screen's session end)."""
    with _engine(ctx) as (engine, settings):
        link = devices.new_link(engine, settings, _actor(), name)
    click.echo(f"new setup link for {name} (works once, for {settings.kiosk.link_hours} h):")
    click.echo(link)


@kiosk_group.command("list")
@click.pass_context
def kiosk_list(ctx: click.Context) -> None:
    """List devices: playlist, state, last contact, address and what they show."""
    with _engine(ctx) as (engine, _settings):
        rows = store.all_devices(engine)
    if not rows:
        click.echo("no kiosk devices")
        return
    click.echo(f"{'name':<20} {'playlist':<16} {'state':<15} {'last contact':<20} "
               f"{'address':<16} showing")
    for row in rows:
        click.echo(f"{row['name']:<20} {row['playlist'] or playlists.WALL:<16} "
                   f"{device_state(row):<15} {_when(row['last_seen_at']):<20} "
                   f"{row['last_ip'] or '-':<16} {row['showing'] or '-'}")


@kiosk_group.command("revoke")
@click.argument("name")
@click.pass_context
def kiosk_revoke(ctx: click.Context, name: str) -> None:
    """Revoke NAME: its screen shows "revoked" and stops; its link no longer works."""
    with _engine(ctx) as (engine, _settings):
        ended = devices.revoke(engine, _actor(), name)
    click.echo(f"revoked {name} ({ended} session{'s' if ended != 1 else ''} ended)")


@kiosk_group.command("set-playlist")
@click.argument("name")
@click.argument("playlist")
@click.pass_context
def kiosk_set_playlist(ctx: click.Context, name: str, playlist: str) -> None:
    """Show PLAYLIST ("wall" for the wall view) on NAME from its next check-in."""
    with _engine(ctx) as (engine, _settings):
        devices.set_playlist(engine, _actor(), name, playlist)
    click.echo(f"{name} now shows {playlist}")


@kiosk_group.command("playlist")
@click.argument("name")
@click.option("--view", "views", multiple=True, metavar="'VIEW [DWELL]'",
              help="a view and its dwell in seconds, e.g. 'wall 30' or '/spread 20' (repeat)")
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="read the views from a file, one 'VIEW [DWELL]' a line")
@click.pass_context
def kiosk_playlist(ctx: click.Context, name: str, views: tuple[str, ...],
                   path: Path | None) -> None:
    """Create or replace playlist NAME from --view options or a --file."""
    text = path.read_text() if path else "\n".join(views)
    with _engine(ctx) as (engine, _settings):
        saved = devices.save_playlist(engine, _actor(), name, text)
    click.echo(f"saved playlist {name.strip().lower()}: {len(saved)} views")


@kiosk_group.command("playlists")
@click.pass_context
def kiosk_playlists(ctx: click.Context) -> None:
    """List playlists with their views."""
    with _engine(ctx) as (engine, _settings):
        rows = store.all_playlists(engine)
    for row in rows:
        click.echo(f"{row['name']}:")
        for entry in row["views"]:
            click.echo(f"  {entry['view']} {entry['dwell']} s")
    if not rows:
        click.echo("no playlists (devices without one show the wall)")
