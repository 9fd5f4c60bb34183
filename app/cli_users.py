"""`p2pdash users ...` and `p2pdash keys ...`: accounts and API keys from the command line.

Passwords come from a prompt or, with --password-stdin, from the first line of standard
input, never from an argument (arguments show up in `ps` and shell history).
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from app.access import ROLES, SCOPES
from app.api import keys as api_keys
from app.auth import commands, users
from app.auth.errors import AccountError


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _engine(ctx: click.Context) -> Iterator[Engine]:
    """An engine on the configured database (migrated when P2PDASH_AUTO_MIGRATE is on)."""
    from app.cli import database
    from db.engine import make_engine
    from db.migrate import upgrade

    with database(ctx.obj["settings"]) as settings:
        engine = make_engine(settings.database_url or "")
        try:
            if settings.auto_migrate:
                upgrade(engine)
            yield engine
        except AccountError as error:
            raise click.ClickException(str(error)) from None
        finally:
            engine.dispose()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.ClickException("--password-stdin: standard input gave no password")
        return line
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users_group() -> None:
    """User accounts: create, list, set-role, disable, enable, set-password."""


@users_group.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="what the user may do")
@click.option("--email", default=None, help="contact address (optional)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def users_create(ctx: click.Context, username: str, role: str, email: str | None,
                 password_stdin: bool) -> None:
    """Create USERNAME with a role; the password is prompted for (or read from stdin)."""
    password = _read_password(password_stdin)
    with _engine(ctx) as engine:
        user = commands.create_user(engine, _actor(), username, password, role, email=email)
    click.echo(f"created {user.username} ({user.role})")


@users_group.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List every user with role, state and last sign-in."""
    with _engine(ctx) as engine:
        rows = users.all_users(engine)
    click.echo(f"{'ID':>4}  {'USERNAME':<24} {'ROLE':<8} {'ACTIVE':<6} LAST LOGIN")
    for user in rows:
        last = user.last_login_at.isoformat(timespec="seconds") if user.last_login_at else "-"
        click.echo(f"{user.id:>4}  {user.username:<24} {user.role:<8} "
                   f"{'yes' if user.is_active else 'no':<6} {last}")


@users_group.command("set-role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.pass_context
def users_set_role(ctx: click.Context, username: str, role: str) -> None:
    """Give USERNAME another ROLE."""
    with _engine(ctx) as engine:
        user = commands.set_role(engine, _actor(), username, role)
    click.echo(f"{user.username} is now {user.role}")


@users_group.command("disable")
@click.argument("username")
@click.pass_context
def users_disable(ctx: click.Context, username: str) -> None:
    """Disable USERNAME: sessions end, sign-in and API keys stop working."""
    with _engine(ctx) as engine:
        user = commands.set_active(engine, _actor(), username, False)
    click.echo(f"{user.username} disabled")


@users_group.command("enable")
@click.argument("username")
@click.pass_context
def users_enable(ctx: click.Context, username: str) -> None:
    """Enable USERNAME again."""
    with _engine(ctx) as engine:
        user = commands.set_active(engine, _actor(), username, True)
    click.echo(f"{user.username} enabled")


@users_group.command("reset-2fa")
@click.argument("username")
@click.pass_context
def users_reset_two_factor(ctx: click.Context, username: str) -> None:
    """Turn off USERNAME's two-factor sign-in (a lost phone); its sessions end."""
    with _engine(ctx) as engine:
        ended = commands.reset_two_factor(engine, _actor(), username)
    click.echo(f"two-factor sign-in of {username} reset; {ended} session(s) ended")


@users_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.pass_context
def users_set_password(ctx: click.Context, username: str, password_stdin: bool) -> None:
    """Set a new password for USERNAME (its sessions end)."""
    password = _read_password(password_stdin)
    with _engine(ctx) as engine:
        user = commands.reset_password(engine, _actor(), username, password)
    click.echo(f"password of {user.username} changed")


@click.group("keys")
def keys_group() -> None:
    """API keys: create, list, revoke."""


def _scopes(_ctx: click.Context, _param: click.Parameter, value: str) -> list[str]:
    scopes = [scope.strip() for scope in value.split(",") if scope.strip()]
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}; known: {', '.join(SCOPES)}")
    return scopes


@keys_group.command("create")
@click.option("--user", "username", required=True, help="the key's owner")
@click.option("--scopes", required=True, callback=_scopes, help="comma-separated: "
              + ", ".join(SCOPES))
@click.option("--name", default="cli", help="what the key is for")
@click.option("--expires-days", type=click.IntRange(1, 3650), default=None,
              help="expire after this many days (default: never)")
@click.pass_context
def keys_create(ctx: click.Context, username: str, scopes: list[str], name: str,
                expires_days: int | None) -> None:
    """Create an API key; the key itself is the last line of output, shown only once."""
    with _engine(ctx) as engine:
        row, key = commands.create_key(engine, _actor(), username, name, scopes,
                                       expires_days=expires_days)
    expires = row["expires_at"].isoformat(timespec="seconds") if row["expires_at"] else "never"
    click.echo(f"key {row['id']} ({row['prefix']}) for {username}: "
               f"scopes {','.join(row['scopes'])}, expires {expires}. Store it now:")
    click.echo(key)


@keys_group.command("list")
@click.option("--user", "username", default=None, help="only this user's keys")
@click.pass_context
def keys_list(ctx: click.Context, username: str | None) -> None:
    """List keys: prefix, owner, scopes, last use, expiry, state (never the secret)."""
    with _engine(ctx) as engine:
        owner = users.find(engine, username) if username else None
        if username and owner is None:
            raise click.ClickException(f"no user named {username!r}")
        rows = api_keys.list_keys(engine, owner.id if owner else None)
    click.echo(f"{'ID':>4}  {'PREFIX':<14} {'USER':<16} {'NAME':<16} {'SCOPES':<18} "
               f"{'LAST USED':<20} {'EXPIRES':<20} STATE")
    for row in rows:
        click.echo(f"{row['id']:>4}  {row['prefix']:<14} {row['username']:<16} "
                   f"{row['name'][:16]:<16} {','.join(row['scopes']):<18} "
                   f"{_when(row['last_used_at']):<20} {_when(row['expires_at']):<20} "
                   f"{'revoked' if row['revoked_at'] else 'active'}")


@keys_group.command("revoke")
@click.argument("key_id", type=int)
@click.pass_context
def keys_revoke(ctx: click.Context, key_id: int) -> None:
    """Revoke the key with KEY_ID: it gets 401 from now on."""
    with _engine(ctx) as engine:
        row = commands.revoke_key(engine, _actor(), key_id)
    click.echo(f"key {row['id']} ({row['prefix']}) revoked")


def _when(value) -> str:
    return value.isoformat(timespec="seconds") if value else "-"
