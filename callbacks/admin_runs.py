"""Admin tab, ingestion runs: filter by source and status, open one for counts and errors."""

from __future__ import annotations

from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, ctx, html
from dash.exceptions import PreventUpdate

from app import access
from callbacks.admin import engine, table, when
from db import ops
from layouts import ids

STATUS_COLOURS = {"ok": "success", "partial": "warning", "failed": "danger",
                  "running": "info", "interrupted": "dark", "cancelled": "secondary"}


def status_badge(status: str) -> dbc.Badge:
    return dbc.Badge(status, color=STATUS_COLOURS.get(status, "secondary"))


def runs_table(rows: list[dict[str, Any]]) -> dbc.Table:
    """Runs, newest first, each with an Open button."""
    return table(["Run", "Source", "Kind", "Market", "Started", "Status", "In", "Rejected",
                  "Errors", ""], [
        [row["id"], row["source"], row["kind"], row["market"] or "-", when(row["started_at"]),
         status_badge(row["status"]), row["inserted"], row["rejected"], row["errors"],
         dbc.Button("Open", id={"type": ids.ADMIN_OPEN_RUN, "index": row["id"]}, size="sm",
                    color="secondary", outline=True)]
        for row in rows], ids.ADMIN_RUNS_TABLE + "-rows")


def run_card(run: dict[str, Any]) -> dbc.Card:
    """One run: what it counted, how it ended, and its errors."""
    counts = [("Received", run["received"]), ("Inserted", run["inserted"]),
              ("Duplicates", run["duplicates"]), ("Rejected", run["rejected"])]
    facts = [("Source", run["source"]), ("Kind", run["kind"]), ("Market", run["market"] or "-"),
             ("Started", when(run["started_at"])), ("Finished", when(run["finished_at"])),
             ("Status", status_badge(run["status"])), *counts, ("Error", run["error"] or "-")]
    errors = table(["When", "Level", "Message", "Payload"], [
        [when(error["at"]), error["level"], error["message"],
         html.Code((error["payload"] or "")[:300])] for error in run["errors"]])
    return dbc.Card([
        dbc.CardHeader(f"Run {run['id']}"),
        dbc.CardBody([
            html.Dl([item for label, value in facts
                     for item in (html.Dt(label, className="col-4"),
                                  html.Dd(value, className="col-8 mb-1"))],
                    className="row mb-3"),
            html.H3("Errors", className="h6"), errors,
        ]),
    ], id=ids.ADMIN_RUN_DETAIL + "-card")


def register(dash_app: Dash) -> None:
    """List runs by filter; open one."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_RUNS_TABLE, "children"),
        Output(ids.ADMIN_RUNS_SOURCE, "options"),
        Input(ids.ADMIN_RUNS_SOURCE, "value"),
        Input(ids.ADMIN_RUNS_STATUS, "value"),
        Input(ids.ADMIN_TABS, "active_tab"),
        roles=access.ADMINS,
    )
    def update_runs(source, status, _tab):
        source = source[:100] if isinstance(source, str) else None
        status = status if status in ops.RUN_STATUSES else None
        rows = ops.list_runs(engine(), source=source, status=status)
        return runs_table(rows), ops.sources(engine())

    @access.callback(
        dash_app,
        Output(ids.ADMIN_RUN_DETAIL, "children"),
        Input({"type": ids.ADMIN_OPEN_RUN, "index": ALL}, "n_clicks"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_open_run(_clicks):
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        run = ops.run_detail(engine(), int(ctx.triggered_id["index"]))
        if run is None:
            return dbc.Alert("That run no longer exists.", color="warning")
        return run_card(run)

    @access.callback(
        dash_app,
        Output(ids.ADMIN_RUN_DETAIL, "children", allow_duplicate=True),
        Input(ids.ADMIN_LINKED_RUN, "data"),
        roles=access.ADMINS,
        prevent_initial_call="initial_duplicate",
    )
    def on_linked_run(run_id):
        if not run_id:
            raise PreventUpdate
        run = ops.run_detail(engine(), int(run_id))
        if run is None:
            return dbc.Alert("That run no longer exists.", color="warning")
        return run_card(run)
