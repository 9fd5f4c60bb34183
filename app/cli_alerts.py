"""`p2pdash alerts ...`: list alert rules and send their test notifications.

The command line acts as an admin: it sees every user's rules, as the admin pages do.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import click
from sqlalchemy import Engine

from app.alerts import service
from app.api.alerts import without_urls
from app.auth import users
from app.config import Settings
from db import alerts as store
from db.alert_model import STATE_LABELS


def _actor() -> service.Actor:
    """The person at the terminal, as an admin actor (user id 0: no account)."""
    return service.Actor(0, f"cli:{getpass.getuser()}", "admin")


@contextmanager
def _database(ctx: click.Context) -> Iterator[tuple[Settings, Engine]]:
    """Settings and an engine on the configured database; alerting errors end the command."""
    from app.cli import migrated

    with migrated(ctx) as (settings, engine):
        try:
            yield settings, engine
        except service.AlertError as error:
            fields = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors)
            raise click.ClickException(f"{error.message}" + (f" ({fields})" if fields else "")
                                       ) from None


def _when(moment: datetime | None) -> str:
    """A time as the table shows it."""
    return moment.isoformat(timespec="seconds") if moment else "-"


def _rows(engine: Engine, username: str | None) -> list[store.RuleRow]:
    """Every rule, or the rules of `username`."""
    if username is None:
        return service.visible_rules(engine, _actor())
    owner = users.find(engine, username)
    if owner is None:
        raise click.ClickException(f"no user named {username!r}")
    return store.list_rules(engine, owner.id)


@click.group("alerts")
def alerts_group() -> None:
    """Alert rules: list, test."""


@alerts_group.command("list")
@click.option("--user", "username", default=None, help="only this user's rules")
@click.pass_context
def alerts_list(ctx: click.Context, username: str | None) -> None:
    """List rules: owner, metric, subject, condition, state and since when."""
    with _database(ctx) as (_settings, engine):
        rows = _rows(engine, username)
    click.echo(f"{'ID':>4}  {'OWNER':<12} {'NAME':<24} {'METRIC':<22} {'SUBJECT':<32} "
               f"{'CONDITION':<22} {'STATE':<10} SINCE")
    for row in rows:
        rule = row.rule
        condition = f"{rule.condition} {rule.threshold_text()}"
        click.echo(f"{rule.id:>4}  {rule.owner[:12]:<12} {rule.name[:24]:<24} "
                   f"{rule.metric:<22} {rule.subject.describe():<32} {condition:<22} "
                   f"{STATE_LABELS[row.state.state]:<10} {_when(row.state.since)}")


@alerts_group.command("test")
@click.argument("rule_id", type=click.IntRange(1, 2**31 - 1))
@click.pass_context
def alerts_test(ctx: click.Context, rule_id: int) -> None:
    """Send RULE_ID's test notification to each of its contact points; exit 1 if any fails."""
    with _database(ctx) as (settings, engine):
        results = service.send_test_rule(engine, settings, _actor(), rule_id)
    for name, result in results:
        status = f"HTTP {result.status_code}" if result.status_code is not None else "-"
        outcome = "ok" if result.ok else "FAILED"
        click.echo(f"{outcome:<6} {name}: {status} {without_urls(result.response)}")
    if not all(result.ok for _name, result in results):
        ctx.exit(1)
