"""Admin tab, audit log: every admin action and sign-in, filtered by actor, action and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from app import access, audit
from callbacks.admin import engine, table, when
from layouts import ids

SINCE = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
         "30d": timedelta(days=30)}


def since(choice: str | None) -> datetime | None:
    """The start of the chosen period ('all' or unknown: None)."""
    period = SINCE.get(choice or "")
    return datetime.now(UTC) - period if period else None


def audit_table(rows: list[dict[str, Any]]) -> dbc.Table:
    """Entries, newest first."""
    return table(["When", "Actor", "Action", "Target", "Address", "Details"], [
        [when(row["at"]), row["actor"] or "-", html.Code(row["action"]), row["target"] or "-",
         row["ip"] or "-", html.Small(json.dumps(row["details"], default=str))
         if row["details"] else ""]
        for row in rows], ids.ADMIN_AUDIT_TABLE + "-rows")


def register(dash_app: Dash) -> None:
    """Refill the log on any filter change, tab switch or admin action."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_AUDIT_TABLE, "children"),
        Output(ids.ADMIN_AUDIT_ACTION, "options"),
        Input(ids.ADMIN_AUDIT_ACTOR, "value"),
        Input(ids.ADMIN_AUDIT_ACTION, "value"),
        Input(ids.ADMIN_AUDIT_SINCE, "value"),
        Input(ids.ADMIN_TABS, "active_tab"),
        Input(ids.ADMIN_USERS_VERSION, "data"),
        Input(ids.ADMIN_KEYS_VERSION, "data"),
        roles=access.ADMINS,
    )
    def update_audit(actor, action, period, _tab, _users, _keys):
        rows = audit.entries(engine(), actor=(actor or "").strip() or None, action=action,
                             since=since(period))
        return audit_table(rows), audit.actions(engine())
