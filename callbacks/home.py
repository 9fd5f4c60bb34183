"""Callbacks of the home page: fill the status cards from the health report."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from app import access, state
from app.health import system_health
from layouts import ids

NO_FEEDS = ("No data yet. Configure SPOT_SYMBOLS and P2P_MARKETS with INGEST_ENABLED=true, "
            "or start 'p2pdash demo' to watch a simulated exchange.")


def database_card(report: dict[str, Any]) -> html.Div:
    """Rows of facts about the database and the extension."""
    ok = report["database"] == "ok"
    rows = [
        ("Database", dbc.Badge("up" if ok else "down", color="success" if ok else "danger")),
        ("PostgreSQL", report.get("server_version") or "-"),
        ("TimescaleDB", report["timescaledb"] or dbc.Badge("not available", color="warning")),
        ("Schema", report.get("schema_revision") or "-"),
        ("Version", report["version"]),
    ]
    if not ok:
        rows.append(("Error", report["database"]))
    return html.Div([dbc.Row([dbc.Col(label, width=5, className="text-body-secondary"),
                              dbc.Col(value)], className="mb-1") for label, value in rows])


def feeds_card(feeds: dict[str, dict[str, Any]]) -> html.Div:
    """A table of feeds with the age of their latest run, or what to do when there are none."""
    if not feeds:
        settings = state.current().settings
        configured = [*settings.spot_symbols, *map(str, settings.p2p_markets)]
        hint = f" Configured now: {', '.join(configured)}." if configured else ""
        return html.P(NO_FEEDS + hint, className="text-body-secondary mb-0")
    header = html.Thead(html.Tr([html.Th(h) for h in ("Source", "Status", "Last run", "Age")]))
    body = html.Tbody([
        html.Tr([html.Td(source), html.Td(feed["status"]), html.Td(feed["last_run_at"]),
                 html.Td(f"{feed['age_seconds']:.0f} s")])
        for source, feed in sorted(feeds.items())
    ])
    return dbc.Table([header, body], size="sm", className="mb-0")


def warnings_block(report: dict[str, Any]) -> list[dbc.Alert]:
    """One alert per warning in the report."""
    return [dbc.Alert(text, color="warning", className="mb-3") for text in report["warnings"]]


def register(dash_app: Dash) -> None:
    """Refresh the status cards on load and on every tick."""

    @access.callback(
        dash_app,
        Output(ids.HOME_DATABASE, "children"),
        Output(ids.HOME_FEEDS, "children"),
        Output(ids.HOME_WARNINGS, "children"),
        Input(ids.HOME_REFRESH, "n_intervals"),
        roles=access.EVERYONE,
    )
    def update_status(_ticks: int | None):
        report = system_health()
        return database_card(report), feeds_card(report["feeds"]), warnings_block(report)
