"""Admin tab, backfill: start a Binance klines backfill; follow recent ones by their runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State
from sqlalchemy import text

from app import access, audit, state
from callbacks.admin import acting_admin, engine, feedback, table, when
from callbacks.admin_runs import status_badge
from ingest.backfill_jobs import BackfillBusy, start_backfill
from ingest.binance_rest import BackfillError, KlinesRequest
from layouts import ids

RECENT_SQL = text("""
    SELECT id, market, status, started_at, finished_at, received, inserted, duplicates,
           error, params
    FROM runs WHERE kind = 'klines_backfill' ORDER BY started_at DESC LIMIT 10
""")


def _day(raw: str | None) -> datetime:
    return datetime.combine(date.fromisoformat(raw[:10]), datetime.min.time(), UTC)


def backfill_request(symbol: str | None, interval: str | None, start: str | None,
                     end: str | None) -> KlinesRequest:
    """The request a form describes (the end day included); raises BackfillError if wrong."""
    if not (symbol and interval and start and end):
        raise BackfillError("symbol, interval and both dates are required")
    return KlinesRequest(symbol.strip().upper(), interval, _day(start),
                         _day(end) + timedelta(days=1)).validate()


def progress_bar(run: dict[str, Any]) -> dbc.Progress:
    """How far a backfill got: received of expected candles."""
    expected = max(1, int((run["params"] or {}).get("expected") or 1))
    share = 100 if run["status"] != "running" else min(100, 100 * run["received"] // expected)
    return dbc.Progress(value=share, label=f"{run['received']:,} / {expected:,}",
                        striped=run["status"] == "running", animated=run["status"] == "running",
                        style={"minWidth": "10rem"})


def recent_backfills() -> dbc.Table:
    """The last ten backfills with progress and counts."""
    with engine().connect() as connection:
        runs = [dict(row) for row in connection.execute(RECENT_SQL).mappings()]
    return table(["Run", "Symbol", "Interval", "Started", "Status", "Progress", "Inserted",
                  "Already had", "Error"], [
        [run["id"], run["market"], (run["params"] or {}).get("interval", "-"),
         when(run["started_at"]), status_badge(run["status"]), progress_bar(run), run["inserted"],
         run["duplicates"], run["error"] or "-"] for run in runs])


def register(dash_app: Dash) -> None:
    """Start backfills; refresh the list of recent ones."""

    @access.callback(
        dash_app,
        Output(ids.ADMIN_BACKFILL_FEEDBACK, "children"),
        Input(ids.ADMIN_BACKFILL_START, "n_clicks"),
        State(ids.ADMIN_BACKFILL_SYMBOL, "value"),
        State(ids.ADMIN_BACKFILL_INTERVAL, "value"),
        State(ids.ADMIN_BACKFILL_DATES, "start_date"),
        State(ids.ADMIN_BACKFILL_DATES, "end_date"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_start_backfill(_clicks, symbol, interval, start, end):
        actor = acting_admin()
        try:
            request = backfill_request(symbol, interval, start, end)
            start_backfill(state.current().settings, engine(), request)
        except (BackfillError, BackfillBusy, ValueError) as error:
            return feedback(False, str(error))
        audit.record(engine(), actor, "backfill.start", request.symbol,
                     {"interval": request.interval, "from": request.start.isoformat(),
                      "to": request.end.isoformat()})
        return feedback(True, f"Backfilling {request.expected_candles():,} {request.interval} "
                              f"candles of {request.symbol}: follow it on the right.")

    @access.callback(
        dash_app,
        Output(ids.ADMIN_BACKFILL_RUNS, "children"),
        Input(ids.ADMIN_BACKFILL_REFRESH, "n_intervals"),
        Input(ids.ADMIN_BACKFILL_FEEDBACK, "children"),
        roles=access.ADMINS,
    )
    def update_backfills(_ticks, _feedback):
        return recent_backfills()
