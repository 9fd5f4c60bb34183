"""Alerts: a trader's rules with their state and value now, the rule form with its preview,
the history of transitions, the delivery log, contact points and silences. A kiosk sees
only the rules alerting now (everyone's), read-only."""

from __future__ import annotations

from typing import Any

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html

from app import access
from app.alerts.service import OWNERS
from app.auth.users import current_role
from db.alert_model import STATE_LABELS
from layouts import ids
from layouts.alerts_form import editor
from layouts.controls import field
from layouts.urlstate import location, pick

PATH = "/alerts"
NAME = "Alerts"
TITLE = "Alerts · p2pdash"
ORDER = 50
ROLES = access.EVERYONE

TABS = {"rules": "Rules", "history": "History", "deliveries": "Deliveries",
        "contacts": "Contact points", "silences": "Silences"}
# The grids follow Bootstrap's colours, so they switch with the light/dark theme.
GRID_THEME = {"function": (
    "themeQuartz.withParams({backgroundColor: 'var(--bs-body-bg)', "
    "foregroundColor: 'var(--bs-body-color)', headerBackgroundColor: 'var(--bs-tertiary-bg)', "
    "borderColor: 'var(--bs-border-color)', accentColor: 'var(--bs-primary)', "
    "oddRowBackgroundColor: 'var(--bs-tertiary-bg)', fontFamily: 'inherit', fontSize: 13, "
    "headerFontSize: 13, spacing: 5, wrapperBorderRadius: 6})")}
STATE_CLASS_RULES = {f"alert-state-{state}": f"params.value === '{label}'"
                     for state, label in {**STATE_LABELS, "disabled": "Disabled"}.items()}
CONTACT_KINDS = {"webhook": "Webhook (Alertmanager JSON)", "apprise": "Apprise URL",
                 "email": "E-mail"}


def column(name: str, header: str, **extra: Any) -> dict[str, Any]:
    """A grid column: sortable, filterable, resizable."""
    return {"field": name, "headerName": header, "sortable": True, "filter": True,
            "resizable": True, **extra}


def state_column() -> dict[str, Any]:
    """The state as a coloured badge."""
    return column("state", "State", width=120, cellClass="alert-state",
                  cellClassRules=STATE_CLASS_RULES)


RULE_COLUMNS = [
    column("name", "Rule", minWidth=160, flex=2), state_column(),
    column("value", "Value now", width=120, type="rightAligned"),
    column("threshold", "Condition", width=150), column("subject", "Subject", flex=2),
    column("spark", "Last day", width=210, filter=False, sortable=False,
           cellClass="alert-spark"),
    column("labels", "Labels", flex=1), column("since", "Since (UTC)", width=165),
    column("owner", "Owner", width=110),
]
KIOSK_COLUMNS = [column("name", "Rule", flex=2), state_column(),
                 column("subject", "Subject", flex=2),
                 column("value", "Value", width=140, type="rightAligned"),
                 column("threshold", "Condition", width=150),
                 column("since", "Since (UTC)", width=170)]
HISTORY_COLUMNS = [
    column("at", "At (UTC)", width=170), column("rule", "Rule", flex=1),
    column("from_state", "From", width=110),
    column("to_state", "To", width=120, cellClass="alert-state",
           cellClassRules=STATE_CLASS_RULES),
    column("value", "Value", width=120, type="rightAligned"),
    column("threshold", "Threshold", width=120), column("data_at", "Data time (UTC)", width=170),
    column("run_id", "Run", width=90), column("silenced", "Silenced", width=100),
    column("chart", "Chart", width=150, cellRenderer="markdown", filter=False),
]
DELIVERY_COLUMNS = [
    column("created", "Queued (UTC)", width=170), column("rule", "Rule", flex=1),
    column("contact", "Contact point", flex=1), column("kind", "Kind", width=100),
    column("status", "Status", width=110, cellClassRules={
        "alert-delivery-failed": "params.value === 'failed'",
        "alert-delivery-sent": "params.value === 'sent'"}),
    column("attempts", "Attempts", width=100), column("answer", "Last answer", flex=2),
]
CONTACT_COLUMNS = [
    column("name", "Name", flex=1), column("kind", "Kind", width=110),
    column("target", "Target", flex=2), column("signed", "Signed", width=90),
    column("shared", "Shared", width=90), column("owner", "Owner", width=110),
    column("health", "Health", flex=1, cellClassRules={
        "alert-delivery-failed": "params.value.startsWith('failing')"}),
]
SILENCE_COLUMNS = [
    column("what", "Silences", flex=2), column("starts", "From (UTC)", width=170),
    column("ends", "Until (UTC)", width=170), column("active", "Now", width=100),
    column("comment", "Comment", flex=1), column("owner", "Owner", width=110),
]


def grid(grid_id: str, columns: list[dict[str, Any]], *, selectable: bool = False,
         height: str = "40vh") -> dag.AgGrid:
    """A grid in the page's theme; rows keyed by their id so a refresh keeps the choice."""
    options: dict[str, Any] = {"theme": GRID_THEME, "animateRows": False,
                               "localeText": {"noRowsToShow": "Nothing to show."}}
    if selectable:
        options["rowSelection"] = {"mode": "singleRow", "checkboxes": False,
                                   "enableClickSelection": True}
    return dag.AgGrid(id=grid_id, columnDefs=columns, rowData=[], getRowId="params.data.id",
                      dashGridOptions=options, style={"height": height, "width": "100%"},
                      className="alerts-grid")


def kiosk_block() -> html.Div:
    """What a wall screen shows: the rules alerting now, everyone's."""
    return html.Div([
        html.H2("Alerting now", className="h4 mb-3"),
        grid(ids.ALERTS_KIOSK_GRID, KIOSK_COLUMNS, height="70vh"),
    ])


def rules_toolbar() -> dbc.Row:
    """Filters of the rule list, and the button that starts a new rule."""
    states = [{"label": label, "value": state}
              for state, label in {**STATE_LABELS, "disabled": "Disabled"}.items()]
    return dbc.Row([
        field("State", dcc.Dropdown(id=ids.ALERTS_STATE_FILTER, options=states, multi=True,
                                    placeholder="any"), 3),
        field("Label", dcc.Dropdown(id=ids.ALERTS_LABEL_FILTER, options=[], multi=True,
                                    placeholder="any"), 3),
        dbc.Col(dbc.Button([html.I(className="bi bi-plus-lg me-1"), "New rule"],
                           id=ids.ALERTS_NEW, color="primary", size="sm"),
                className="mb-2 ms-auto", width="auto"),
    ], className="align-items-end")


def rules_tab() -> html.Div:
    """The rule list, and the form of the chosen or new rule."""
    return html.Div([
        rules_toolbar(),
        grid(ids.ALERTS_GRID, RULE_COLUMNS, selectable=True, height="34vh"),
        html.P("Click a rule to edit it and preview it.", className="small text-body-secondary"
               " mt-1 mb-0"),
        editor(),
    ], className="mt-3")


def history_tab(rule_id: int | None) -> html.Div:
    """Transitions, newest first: of one rule or of all."""
    return html.Div([
        dbc.Row(field("Rule", dcc.Dropdown(id=ids.ALERTS_HISTORY_RULE, options=[],
                                           value=rule_id, placeholder="all rules"), 4)),
        grid(ids.ALERTS_HISTORY_GRID, HISTORY_COLUMNS, height="55vh"),
        html.P("Chart opens the subject's chart at that moment.",
               className="small text-body-secondary mt-1"),
    ], className="mt-3")


def deliveries_tab() -> html.Div:
    """The delivery log, failures marked."""
    return html.Div(grid(ids.ALERTS_DELIVERIES_GRID, DELIVERY_COLUMNS, height="55vh"),
                    className="mt-3")


def contact_form() -> dbc.Card:
    """A new contact point: where notifications go. Its URL and secret are never shown again."""
    kinds = [{"label": label, "value": kind} for kind, label in CONTACT_KINDS.items()]
    return dbc.Card([dbc.CardHeader("New contact point"), dbc.CardBody([
        field("Name", dbc.Input(id=ids.ALERTS_CONTACT_NAME, size="sm")),
        field("Kind", dbc.Select(id=ids.ALERTS_CONTACT_KIND, options=kinds, value="webhook",
                                 size="sm")),
        field("URL", dbc.Input(id=ids.ALERTS_CONTACT_URL, size="sm", type="password",
                               placeholder="https://… or an Apprise URL (tgram://…)"),
              id=ids.ALERTS_CONTACT_URL + "-group"),
        field("To (e-mail address)", dbc.Input(id=ids.ALERTS_CONTACT_TO, size="sm",
                                               type="email"),
              id=ids.ALERTS_CONTACT_TO + "-group"),
        field("Signing secret (optional)", dbc.Input(id=ids.ALERTS_CONTACT_SECRET, size="sm",
                                                     type="password"),
              id=ids.ALERTS_CONTACT_SECRET + "-group"),
        dbc.Button("Add contact point", id=ids.ALERTS_CONTACT_ADD, color="primary", size="sm"),
    ])])


def contacts_tab() -> html.Div:
    """The contact points with a test and a delete for the chosen one; a form to add one."""
    actions = html.Div([
        dbc.Button([html.I(className="bi bi-send me-1"), "Send test"],
                   id=ids.ALERTS_CONTACT_TEST, size="sm", color="secondary", outline=True,
                   className="me-2"),
        dbc.Button([html.I(className="bi bi-trash me-1"), "Delete"],
                   id=ids.ALERTS_CONTACT_DELETE, size="sm", color="danger", outline=True),
    ], className="mt-2")
    return dbc.Row([
        dbc.Col([grid(ids.ALERTS_CONTACTS_GRID, CONTACT_COLUMNS, selectable=True,
                      height="40vh"), actions,
                 html.Div(id=ids.ALERTS_CONTACT_FEEDBACK, className="mt-2", role="status")],
                lg=8),
        dbc.Col(contact_form(), lg=4),
    ], className="mt-3")


def silence_form() -> dbc.Card:
    """A new silence: one rule until a time, or every rule matching labels in a window."""
    modes = {"rule": "one rule", "matchers": "rules matching labels"}
    return dbc.Card([dbc.CardHeader("New silence"), dbc.CardBody([
        field("Silence", dbc.RadioItems(id=ids.ALERTS_SILENCE_MODE, value="rule", inline=True,
                                        options=[{"label": label, "value": key}
                                                 for key, label in modes.items()])),
        field("Rule", dcc.Dropdown(id=ids.ALERTS_SILENCE_RULE, options=[]),
              id=ids.ALERTS_SILENCE_RULE + "-group"),
        field("Matchers", dbc.Input(id=ids.ALERTS_SILENCE_MATCHERS, size="sm",
                                    placeholder="severity=critical, market!=okx:USDT/ARS"),
              id=ids.ALERTS_SILENCE_MATCHERS + "-group"),
        field("From (your time zone; empty: now)",
              dbc.Input(id=ids.ALERTS_SILENCE_START, type="datetime-local", size="sm"),
              id=ids.ALERTS_SILENCE_START + "-group"),
        field("Until (your time zone)", dbc.Input(id=ids.ALERTS_SILENCE_END,
                                                  type="datetime-local", size="sm")),
        field("Comment", dbc.Input(id=ids.ALERTS_SILENCE_COMMENT, size="sm")),
        dbc.Button("Add silence", id=ids.ALERTS_SILENCE_ADD, color="primary", size="sm"),
    ])])


def silences_tab() -> html.Div:
    """Silences with a delete for the chosen one; a form to add one."""
    return dbc.Row([
        dbc.Col([grid(ids.ALERTS_SILENCES_GRID, SILENCE_COLUMNS, selectable=True,
                      height="40vh"),
                 dbc.Button([html.I(className="bi bi-trash me-1"), "Delete"],
                            id=ids.ALERTS_SILENCE_DELETE, size="sm", color="danger",
                            outline=True, className="mt-2"),
                 html.Div(id=ids.ALERTS_SILENCE_FEEDBACK, className="mt-2", role="status")],
                lg=8),
        dbc.Col(silence_form(), lg=4),
    ], className="mt-3")


def _rule_param(params: dict[str, str]) -> int | None:
    raw = params.get("rule") or ""
    return int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None


def owner_block(params: dict[str, str]) -> html.Div:
    """Everything a rule owner works with, in tabs; ?tab= and ?rule= choose the start."""
    rule_id = _rule_param(params)
    tabs = {"rules": rules_tab(), "history": history_tab(rule_id),
            "deliveries": deliveries_tab(), "contacts": contacts_tab(),
            "silences": silences_tab()}
    return html.Div([
        dcc.Store(id=ids.ALERTS_VERSION, data=0),
        dcc.Store(id=ids.ALERTS_CONTACTS_VERSION, data=0),
        dcc.Store(id=ids.ALERTS_SILENCES_VERSION, data=0),
        dcc.Store(id=ids.ALERTS_EDITING, data={"id": rule_id, "open": rule_id is not None}),
        dcc.Store(id=ids.ALERTS_FORM_ERRORS, data=[]),
        html.H2("Alerts", className="h4 mb-3"),
        dbc.Tabs([dbc.Tab(body, label=TABS[key], tab_id=key) for key, body in tabs.items()],
                 id=ids.ALERTS_TABS, active_tab=pick(params, "tab", TABS, "rules")),
    ])


def layout(**params: str) -> html.Div:
    """A kiosk's list of what is alerting, or an owner's rules and everything around them."""
    body = owner_block(params) if current_role() in OWNERS else kiosk_block()
    return html.Div([location(ids.ALERTS_URL), body])
