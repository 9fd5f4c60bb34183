"""Callbacks of the frame: light/dark, time zone and live refresh, kept in the browser; and
the alerts bell, refreshed by the live interval."""

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, html, no_update
from flask_login import current_user

from app import access, state
from db import alerts as alert_store
from db.alert_model import ALERTING, STATE_LABELS
from layouts import ids
from layouts.shell import DEFAULT_REFRESH_SECONDS

STATE_COLOURS = {"firing": "danger", "recovering": "warning", "nodata": "secondary",
                 "error": "dark"}
BELL_LIST_LIMIT = 15

APPLY_THEME = """
function (dark, stored) {
    const ctx = window.dash_clientside.callback_context;
    let mode = stored || localStorage.getItem("p2pdash-theme") || "light";
    if (ctx.triggered.length && ctx.triggered[0].prop_id.startsWith("%(switch)s")) {
        mode = dark ? "dark" : "light";
    }
    document.documentElement.setAttribute("data-bs-theme", mode);
    localStorage.setItem("p2pdash-theme", mode);
    return [mode, mode === "dark"];
}
""".replace("%(switch)s", ids.THEME_SWITCH)


# Keep a choice in its store: on load take the stored one (the store may not have read
# localStorage yet, so read it directly too), later the one just made.
KEEP_CHOICE = """
function (chosen, stored) {
    const ctx = window.dash_clientside.callback_context;
    let value = stored;
    if (value === null || value === undefined) {
        try { value = JSON.parse(localStorage.getItem("%(store)s")); } catch (e) { value = null; }
    }
    if (ctx.triggered.length && ctx.triggered[0].prop_id.startsWith("%(select)s.") && chosen) {
        value = chosen;
    }
    if (value === null || value === undefined) { value = "%(default)s"; }
    return [value, value];
}
"""

APPLY_REFRESH = """
function (seconds) {
    const period = parseInt(seconds || "%(default)s", 10);
    return [Math.max(period, 1) * 1000, !(period > 0)];
}
"""


def _keep_choice(select: str, store: str, default: str) -> str:
    return KEEP_CHOICE % {"select": select, "store": store, "default": default}


def bell_owner() -> int | None:
    """Whose rules the bell counts: a trader's or analyst's own; everyone's for a kiosk
    (the wall screen's alerting list) and an admin (who sees every rule)."""
    if current_user.role in ("kiosk", "admin"):
        return None
    return current_user.id


def bell_list(owner: int | None) -> Any:
    """The alerting rules, each a link to it on the Alerts page."""
    rows = [row for row in alert_store.list_rules(state.current().engine, owner)
            if row.rule.enabled and row.state.state in ALERTING]
    if not rows:
        return html.P("Nothing is alerting.", className="mb-1 small text-body-secondary")
    items = [html.Li([
        dbc.Badge(STATE_LABELS[row.state.state], color=STATE_COLOURS[row.state.state],
                  className="me-2"),
        html.A(row.rule.name, href="/alerts" if current_user.role == "kiosk"
               else f"/alerts?rule={row.rule.id}"),
    ], className="mb-1") for row in rows[:BELL_LIST_LIMIT]]
    more = len(rows) - BELL_LIST_LIMIT
    return html.Div([html.Ul(items, className="list-unstyled mb-2"),
                     html.Div(f"and {more} more" if more > 0 else "", className="small"),
                     html.A("Open Alerts", href="/alerts", className="small")])


def register(dash_app: Dash) -> None:
    """Apply the stored theme, zone and refresh on load, and whenever the viewer changes them;
    keep the bell's count fresh."""
    register_bell(dash_app)
    for select, store, default in ((ids.TZ_SELECT, ids.TZ_STORE, "UTC"),
                                   (ids.REFRESH_SELECT, ids.REFRESH_STORE,
                                    str(DEFAULT_REFRESH_SECONDS))):
        dash_app.clientside_callback(_keep_choice(select, store, default),
                                     Output(store, "data"), Output(select, "value"),
                                     Input(select, "value"), State(store, "data"))
    dash_app.clientside_callback(
        APPLY_REFRESH % {"default": DEFAULT_REFRESH_SECONDS},
        Output(ids.LIVE, "interval"), Output(ids.LIVE, "disabled"),
        Input(ids.REFRESH_STORE, "data"))
    dash_app.clientside_callback(
        APPLY_THEME,
        Output(ids.THEME_STORE, "data"),
        Output(ids.THEME_SWITCH, "value"),
        Input(ids.THEME_SWITCH, "value"),
        State(ids.THEME_STORE, "data"),
    )


def register_bell(dash_app: Dash) -> None:
    """The bell's count on every live tick, and its list while it is open."""

    @access.callback(
        dash_app,
        Output(ids.NAV_BELL_COUNT, "children"), Output(ids.NAV_BELL_COUNT, "color"),
        Output(ids.NAV_BELL_LIST, "children"),
        Input(ids.LIVE, "n_intervals"), Input(ids.NAV_BELL_POPOVER, "is_open"),
        roles=access.EVERYONE,
    )
    def update_bell(_ticks, is_open):
        owner = bell_owner()
        count = alert_store.firing_count(state.current().engine, owner)
        listing = bell_list(owner) if is_open else no_update
        return str(count), "danger" if count else "secondary", listing
