"""First run: a fresh install gets its first admin from a password the user types or we generate.

No default password ever exists. `p2pdash run` and `p2pdash demo` call this on a database
with no admin: at a terminal it asks (Enter generates one); without a terminal it generates
one. A generated password is printed once, on the terminal only, never to the log.
In production nothing is generated: P2PDASH_ADMIN_PASSWORD or `p2pdash users create` it is.
"""

from __future__ import annotations

import secrets
import sys

import click
from sqlalchemy import Engine

from app.auth import commands, users
from app.config import Settings

MIN_LENGTH = 10


def _ask_or_generate() -> tuple[str, bool]:
    if sys.stdin.isatty():
        typed = click.prompt("No admin yet. Choose a password for the first admin "
                             "(Enter: generate one)", default="", hide_input=True,
                             show_default=False, err=True)
        if typed:
            if len(typed) < MIN_LENGTH:
                raise click.ClickException(f"the password needs at least {MIN_LENGTH} characters")
            return typed, False
    return secrets.token_urlsafe(12), True


def ensure_admin(engine: Engine, settings: Settings) -> None:
    """Create the first admin on a fresh development install; say how to sign in."""
    if settings.is_production or settings.admin_password or users.count(engine, role="admin"):
        return
    password, generated = _ask_or_generate()
    commands.create_user(engine, "system", settings.admin_user, password, "admin")
    shown = f" and password {password}" if generated else ""
    click.echo(f"\n  First run: created the admin '{settings.admin_user}'{shown}.\n"
               "  Sign in, then add users and API keys under Admin. "
               "This password is not shown again.\n", err=True)
