"""Admin tab, health: database, extension, cache backend, ingest leader, feed staleness."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, html

from app import access, state
from app.health import cache_status, system_health
from callbacks.admin import engine, table, when
from db import ops
from layouts import ids

NO_LEADER = "no leader: nothing is ingesting (start p2pdash run or p2pdash ingest)"


def stale_after(poll_seconds: int) -> int:
    """A finished feed older than this many seconds is stale (three polls, at least 5 min)."""
    return max(3 * poll_seconds, 300)


def _fact(label: str, value: Any) -> dbc.Row:
    return dbc.Row([dbc.Col(label, width=4, className="text-body-secondary"), dbc.Col(value)],
                   className="mb-1")


def _badge(ok: bool, yes: str, no: str) -> dbc.Badge:
    return dbc.Badge(yes if ok else no, color="success" if ok else "danger")


def leader_block(leader: dict[str, Any] | None) -> html.Div:
    """Who holds the ingest leader lock, as pg_locks says."""
    if leader is None:
        return html.Div(dbc.Alert(NO_LEADER, color="warning", className="mb-0"))
    return html.Div([
        _fact("Application", leader["application_name"] or "-"),
        _fact("Client", leader["client_addr"] or "local socket"),
        _fact("Backend pid", leader["pid"]),
        _fact("Since", when(leader["backend_start"])),
    ])


def feeds_table(feeds: dict[str, dict[str, Any]], limit: int) -> html.Div:
    """Each feed's latest run, its age, and whether that is stale."""
    rows = []
    for source, feed in sorted(feeds.items()):
        fresh = feed["status"] == "running" or feed["age_seconds"] <= limit
        rows.append([source, feed["status"], f"{feed['age_seconds']:.0f} s",
                     _badge(fresh, "fresh", "stale")])
    return table(["Feed", "Last status", "Age", ""], rows)


def retention_table(kept: dict[str, dict[str, Any]]) -> html.Div:
    """Per table: its oldest row and how long rows are kept."""
    rows = [[name, when(datetime.fromisoformat(item["oldest"])) if item["oldest"] else "empty",
             f"{item['keep_days']} days" if item["keep_days"] else "for ever"]
            for name, item in sorted(kept.items())]
    return table(["Table", "Oldest row", "Kept"], rows)


def health_view(report: dict[str, Any], cache: dict[str, Any], leader: dict[str, Any] | None,
                limit: int) -> dbc.Row:
    """Cards for the system, the leader and the feeds."""
    system = [
        _fact("Database", _badge(report["database"] == "ok", "up", report["database"])),
        _fact("TimescaleDB", report["timescaledb"] or dbc.Badge("not available",
                                                                 color="warning")),
        _fact("Schema", report.get("schema_revision") or "-"),
        _fact("Cache", [cache["backend"], " ",
                        _badge(cache["ok"], "ok", cache["error"] or "down")]),
        _fact("Version", report["version"]),
    ]
    return dbc.Row([
        dbc.Col(dbc.Card([dbc.CardHeader("System"), dbc.CardBody(system)]), lg=4, xl=3,
                className="mb-3"),
        dbc.Col(dbc.Card([dbc.CardHeader("Ingest leader"),
                          dbc.CardBody(leader_block(leader))]), lg=4, xl=4,
                className="mb-3"),
        dbc.Col(dbc.Card([dbc.CardHeader(f"Feeds (stale after {limit} s)"),
                          dbc.CardBody(feeds_table(report["feeds"], limit))]), lg=4, xl=5,
                className="mb-3"),
        dbc.Col(dbc.Card([dbc.CardHeader("Data kept (retention)"),
                          dbc.CardBody(retention_table(report.get("retention") or {}))]),
                lg=6, className="mb-3"),
    ])


def register(dash_app: Dash) -> None:
    """Refresh the health cards on a timer and when the tab opens."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_HEALTH, "children"),
        Input(ids.ADMIN_HEALTH_REFRESH, "n_intervals"),
        Input(ids.ADMIN_TABS, "active_tab"),
        roles=access.ADMINS,
    )
    def update_health(_ticks, _tab):
        report = system_health()
        leader = ops.ingest_leader(engine()) if report["database"] == "ok" else None
        limit = stale_after(state.current().settings.p2p_poll_seconds)
        return health_view(report, cache_status(), leader, limit)
