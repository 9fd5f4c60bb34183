"""Callbacks of the admin page, one module per tab; shared helpers live here."""

from __future__ import annotations

from datetime import UTC, datetime

import dash_bootstrap_components as dbc
from dash import Dash
from flask_login import current_user
from sqlalchemy import Engine

from app import state


def register(dash_app: Dash) -> None:
    """Attach the callbacks of every admin tab."""
    from callbacks import (
        admin_audit,
        admin_backfill,
        admin_health,
        admin_keys,
        admin_kiosk,
        admin_payments,
        admin_runs,
        admin_users,
    )

    for module in (admin_users, admin_keys, admin_audit, admin_runs, admin_backfill,
                   admin_payments, admin_health, admin_kiosk):
        module.register(dash_app)


def engine() -> Engine:
    """The database engine of this app."""
    return state.current().engine


def acting_admin() -> str:
    """The signed-in admin's name, for the audit log (the gate checked already; this too)."""
    if not current_user.is_authenticated or current_user.role != "admin":
        raise PermissionError("admin actions need an admin")
    return current_user.username


def when(moment: datetime | None) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM:SS' UTC, or '-'."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def feedback(ok: bool, message: str) -> dbc.Alert:
    """A short success or failure note under a form."""
    return dbc.Alert(message, color="success" if ok else "danger", dismissable=True,
                     className="py-2 mb-0")


def table(headers: list[str], rows: list[list], table_id: str | None = None) -> dbc.Table:
    """A compact striped table, or a note when there are no rows."""
    from dash import html

    if not rows:
        return html.P("Nothing to show.", className="text-body-secondary")
    head = html.Thead(html.Tr([html.Th(header) for header in headers]))
    body = html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])
    return dbc.Table([head, body], size="sm", striped=True, hover=True, responsive=True,
                     id=table_id or "", className="align-middle")
