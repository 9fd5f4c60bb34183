"""Admin: users, API keys, the audit log, ingestion runs and system health (admins only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from db.intervals import INTERVALS
from db.ops import RUN_STATUSES
from layouts import ids
from layouts.admin_kiosk import kiosk_tab

PATH = "/admin"
NAME = "Admin"
TITLE = "Admin · p2pdash"
ORDER = 90
ROLES = access.ADMINS

HEALTH_REFRESH_MS = 15_000
SINCE_CHOICES = {"1h": "last hour", "24h": "last 24 hours", "7d": "last 7 days",
                 "30d": "last 30 days", "all": "all time"}


def _field(label: str, control, width: int = 12) -> dbc.Col:
    return dbc.Col([dbc.Label(label, html_for=getattr(control, "id", None)), control],
                   md=width, className="mb-2")


def _role_select(component_id: str, value: str = "kiosk") -> dbc.Select:
    return dbc.Select(id=component_id, value=value,
                      options=[{"label": role, "value": role} for role in access.ROLES])


def users_tab() -> html.Div:
    """The user table, a create form and a manage form."""
    create = dbc.Card([dbc.CardHeader("New user"), dbc.CardBody([
        dbc.Row([_field("Username", dbc.Input(id=ids.ADMIN_NEW_USERNAME), 6),
                 _field("Role", _role_select(ids.ADMIN_NEW_ROLE), 6)]),
        dbc.Row([_field("Email (optional)", dbc.Input(id=ids.ADMIN_NEW_EMAIL, type="email"), 6),
                 _field("Password", dbc.Input(id=ids.ADMIN_NEW_PASSWORD, type="password"), 6)]),
        dbc.Button("Create user", id=ids.ADMIN_CREATE_USER, color="primary"),
        html.Div(id=ids.ADMIN_USER_FEEDBACK, className="mt-2"),
    ])], className="mb-3")
    manage = dbc.Card([dbc.CardHeader("Manage a user"), dbc.CardBody([
        _field("User", dcc.Dropdown(id=ids.ADMIN_MANAGE_USER, clearable=False)),
        dbc.InputGroup([_role_select(ids.ADMIN_MANAGE_ROLE),
                        dbc.Button("Change role", id=ids.ADMIN_SET_ROLE)], className="mb-2"),
        dbc.InputGroup([dbc.Input(id=ids.ADMIN_RESET_PASSWORD, type="password",
                                  placeholder="New password"),
                        dbc.Button("Reset password", id=ids.ADMIN_RESET_PASSWORD_GO)],
                       className="mb-2"),
        dbc.Button("Disable", id=ids.ADMIN_DISABLE_USER, color="danger", outline=True,
                   className="me-2"),
        dbc.Button("Enable", id=ids.ADMIN_ENABLE_USER, color="success", outline=True,
                   className="me-2"),
        dbc.Button("Sign out everywhere", id=ids.ADMIN_SIGN_OUT_USER, color="warning",
                   outline=True, className="me-2",
                   title="End every session and remember cookie of the user"),
        dbc.Button("Reset two-factor", id=ids.ADMIN_RESET_2FA, color="warning", outline=True,
                   title="A lost phone: turn the user's two-factor sign-in off and end "
                         "their sessions; they enrol again"),
        html.Div(id=ids.ADMIN_MANAGE_FEEDBACK, className="mt-2"),
    ])], className="mb-3")
    return dbc.Row([dbc.Col(html.Div(id=ids.ADMIN_USERS_TABLE), lg=7),
                    dbc.Col([create, manage], lg=5)], className="mt-3")


def keys_tab() -> html.Div:
    """The key list (with revoke buttons) and a create form that shows a new key once."""
    create = dbc.Card([dbc.CardHeader("New API key"), dbc.CardBody([
        _field("For user", dcc.Dropdown(id=ids.ADMIN_KEY_USER)),
        _field("Name", dbc.Input(id=ids.ADMIN_KEY_NAME, placeholder="what it is for")),
        _field("Scopes", dbc.Checklist(id=ids.ADMIN_KEY_SCOPES, inline=True, value=["read"],
                                       options=[{"label": s, "value": s} for s in access.SCOPES])),
        _field("Expires after days (empty: never)",
               dbc.Input(id=ids.ADMIN_KEY_EXPIRES, type="number", min=1, max=3650, step=1)),
        dbc.Button("Create key", id=ids.ADMIN_CREATE_KEY, color="primary"),
        html.Div(id=ids.ADMIN_NEW_KEY, className="mt-2"),
    ])])
    return dbc.Row([dbc.Col([html.Div(id=ids.ADMIN_KEY_FEEDBACK),
                             html.Div(id=ids.ADMIN_KEYS_TABLE)], lg=8),
                    dbc.Col(create, lg=4)], className="mt-3")


def audit_tab() -> html.Div:
    """Filters (actor, action, time) over the audit log."""
    filters = dbc.Row([
        _field("Actor starts with", dbc.Input(id=ids.ADMIN_AUDIT_ACTOR, debounce=True), 4),
        _field("Action", dcc.Dropdown(id=ids.ADMIN_AUDIT_ACTION, placeholder="any"), 4),
        _field("When", dbc.Select(id=ids.ADMIN_AUDIT_SINCE, value="7d", options=[
            {"label": label, "value": value} for value, label in SINCE_CHOICES.items()]), 4),
    ])
    return html.Div([filters, html.Div(id=ids.ADMIN_AUDIT_TABLE)], className="mt-3")


def runs_tab() -> html.Div:
    """Ingestion runs by source and status; open one to see its counts and errors."""
    filters = dbc.Row([
        _field("Source", dcc.Dropdown(id=ids.ADMIN_RUNS_SOURCE, placeholder="any"), 6),
        _field("Status", dcc.Dropdown(id=ids.ADMIN_RUNS_STATUS, placeholder="any", options=[
            {"label": status, "value": status} for status in RUN_STATUSES]), 6),
    ])
    return dbc.Row([dbc.Col([filters, html.Div(id=ids.ADMIN_RUNS_TABLE)], lg=7),
                    dbc.Col(html.Div(id=ids.ADMIN_RUN_DETAIL), lg=5)], className="mt-3")


def backfill_tab() -> html.Div:
    """Queue a Binance klines backfill (the ingest leader runs it); follow or cancel jobs."""
    today = datetime.now(UTC).date()
    form = dbc.Card([dbc.CardHeader("Backfill candles from Binance"), dbc.CardBody([
        dbc.Row([_field("Symbol", dbc.Input(id=ids.ADMIN_BACKFILL_SYMBOL, value="BTCUSDT"), 6),
                 _field("Interval", dbc.Select(id=ids.ADMIN_BACKFILL_INTERVAL, value="1m",
                                               options=list(INTERVALS)), 6)]),
        _field("From - to (UTC days; the end day is included)", dcc.DatePickerRange(
            id=ids.ADMIN_BACKFILL_DATES, start_date=today - timedelta(days=1), end_date=today,
            max_date_allowed=today, display_format="YYYY-MM-DD")),
        dbc.Button("Queue backfill", id=ids.ADMIN_BACKFILL_START, color="primary"),
        html.Div(id=ids.ADMIN_BACKFILL_FEEDBACK, className="mt-2"),
    ])])
    return dbc.Row([dbc.Col(form, lg=4),
                    dbc.Col([html.Div(id=ids.ADMIN_BACKFILL_CANCEL_FEEDBACK, className="mb-2"),
                             html.Div(id=ids.ADMIN_BACKFILL_RUNS),
                             dcc.Interval(id=ids.ADMIN_BACKFILL_REFRESH, interval=2000)], lg=8)],
                   className="mt-3")


def payments_tab() -> html.Div:
    """Payment identifiers the exchanges sent that map to no canonical code yet."""
    mapper = dbc.Card([dbc.CardHeader("Map an identifier"), dbc.CardBody([
        _field("Identifier", dcc.Dropdown(id=ids.ADMIN_PAYMENT_METHOD)),
        _field("Canonical code", dbc.Input(id=ids.ADMIN_PAYMENT_CANONICAL,
                                           placeholder="e.g. bank_transfer, mercadopago")),
        dbc.Button("Map", id=ids.ADMIN_PAYMENT_MAP, color="primary"),
        html.Div(id=ids.ADMIN_PAYMENT_FEEDBACK, className="mt-2"),
    ])])
    return dbc.Row([dbc.Col(html.Div(id=ids.ADMIN_PAYMENTS_TABLE), lg=8),
                    dbc.Col(mapper, lg=4)], className="mt-3")


def health_tab() -> html.Div:
    """Database, extension, cache, ingest leader and feed staleness, refreshed live."""
    return html.Div([html.Div(id=ids.ADMIN_HEALTH, className="mt-3"),
                     dcc.Interval(id=ids.ADMIN_HEALTH_REFRESH, interval=HEALTH_REFRESH_MS)])


TABS = ("users", "keys", "audit", "runs", "backfill", "payments", "health", "kiosk")


def layout(**params: str) -> html.Div:
    """The admin tabs, each filled by its callbacks; ?tab=runs&run=ID opens a run (the
    views link to it)."""
    run = params.get("run", "")
    return html.Div([
        html.H2("Administration", className="h4 mb-3"),
        dcc.Store(id=ids.ADMIN_USERS_VERSION, data=0),
        dcc.Store(id=ids.ADMIN_KEYS_VERSION, data=0),
        dcc.Store(id=ids.ADMIN_LINKED_RUN, data=int(run) if run.isdigit() else None),
        dbc.Tabs([
            dbc.Tab(users_tab(), label="Users", tab_id="users"),
            dbc.Tab(keys_tab(), label="API keys", tab_id="keys"),
            dbc.Tab(audit_tab(), label="Audit log", tab_id="audit"),
            dbc.Tab(runs_tab(), label="Ingestion runs", tab_id="runs"),
            dbc.Tab(backfill_tab(), label="Backfill", tab_id="backfill"),
            dbc.Tab(payments_tab(), label="Payment methods", tab_id="payments"),
            dbc.Tab(kiosk_tab(), label="Wall screens", tab_id="kiosk"),
            dbc.Tab(health_tab(), label="Health", tab_id="health"),
        ], id=ids.ADMIN_TABS,
            active_tab=params.get("tab") if params.get("tab") in TABS else "users"),
    ])
