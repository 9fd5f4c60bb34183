"""Admin tab, backfill: queue a Binance klines backfill; follow or cancel the recent jobs.

The page only queues the job: the ingest leader executes it (ingest/job_queue.py), so no
backfill runs inside a web request or dies with a web process. Progress is read from the
job's run row, which any process can see.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dash_bootstrap_components as dbc
from dash import ALL, Dash, Input, Output, State, ctx
from dash.exceptions import PreventUpdate

from app import access, audit
from callbacks.admin import acting_admin, engine, feedback, table, when
from callbacks.admin_runs import status_badge
from db import jobs
from ingest.backfill_jobs import KIND, BackfillBusy, queue_backfill, request_from_params
from ingest.binance_rest import BackfillError, KlinesRequest
from layouts import ids

JOB_COLOURS = {"queued": "secondary", "running": "info", "done": "success",
               "failed": "danger", "cancelled": "dark"}


def _day(raw: str | None) -> datetime:
    return datetime.combine(date.fromisoformat(raw[:10]), datetime.min.time(), UTC)


def backfill_request(symbol: str | None, interval: str | None, start: str | None,
                     end: str | None) -> KlinesRequest:
    """The request a form describes (the end day included); raises BackfillError if wrong."""
    if not (symbol and interval and start and end):
        raise BackfillError("symbol, interval and both dates are required")
    return KlinesRequest(symbol.strip().upper(), interval, _day(start),
                         _day(end) + timedelta(days=1)).validate()


def progress_bar(job: dict[str, Any]) -> dbc.Progress | str:
    """How far a job's current run got: received of expected candles."""
    if job["run_id"] is None:
        return "waiting for the ingest leader" if job["status"] == "queued" else "-"
    running = job["status"] == "running"
    expected = max(1, int((job["run_params"] or {}).get("expected") or 1))
    received = job["run_received"] or 0
    share = min(100, 100 * received // expected) if running else 100
    return dbc.Progress(value=share, label=f"{received:,} / {expected:,}", striped=running,
                        animated=running, style={"minWidth": "10rem"})


def job_badge(job: dict[str, Any]) -> dbc.Badge:
    status = "cancelling" if job["status"] == "running" and job["cancel_requested"] else \
        job["status"]
    return dbc.Badge(status, color=JOB_COLOURS.get(job["status"], "secondary"))


def cancel_button(job: dict[str, Any]) -> dbc.Button | str:
    if job["status"] not in jobs.ACTIVE or job["cancel_requested"]:
        return ""
    return dbc.Button("Cancel", id={"type": ids.ADMIN_BACKFILL_CANCEL, "index": job["id"]},
                      size="sm", color="danger", outline=True)


def job_row(job: dict[str, Any]) -> list:
    """One job: what it backfills, how it stands, its run's counts and a Cancel button."""
    request = request_from_params(job["params"])
    run = status_badge(job["run_status"]) if job["run_status"] else "-"
    return [job["id"], request.symbol, request.interval,
            f"{request.start:%Y-%m-%d} - {request.end - timedelta(seconds=1):%Y-%m-%d}",
            when(job["created_at"]), job["requested_by"] or "-", job_badge(job),
            job["attempts"], job["run_id"] or "-", run, progress_bar(job),
            job["run_inserted"] if job["run_id"] else "-",
            job["run_duplicates"] if job["run_id"] else "-", job["error"] or "-",
            cancel_button(job)]


def recent_backfills() -> dbc.Table:
    """The last ten backfill jobs with their progress and counts."""
    return table(["Job", "Symbol", "Interval", "Days", "Queued", "By", "Status", "Attempts",
                  "Run", "Run status", "Progress", "Inserted", "Already had", "Error", ""],
                 [job_row(job) for job in jobs.list_recent(engine(), KIND, limit=10)])


def register(dash_app: Dash) -> None:
    """Queue and cancel backfills; refresh the list of recent ones."""

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
            job_id = queue_backfill(engine(), request, actor)
        except (BackfillError, BackfillBusy, ValueError) as error:
            return feedback(False, str(error))
        audit.record(engine(), actor, "backfill.start", request.symbol,
                     {"job_id": job_id, "interval": request.interval,
                      "from": request.start.isoformat(), "to": request.end.isoformat()})
        return feedback(True, f"Queued job {job_id}: backfilling "
                              f"{request.expected_candles():,} {request.interval} candles of "
                              f"{request.symbol}. The ingest leader runs it; follow it on "
                              f"the right.")

    @access.callback(
        dash_app,
        Output(ids.ADMIN_BACKFILL_CANCEL_FEEDBACK, "children"),
        Input({"type": ids.ADMIN_BACKFILL_CANCEL, "index": ALL}, "n_clicks"),
        roles=access.ADMINS,
        prevent_initial_call=True,
    )
    def on_cancel_job(_clicks):
        if not isinstance(ctx.triggered_id, dict) or not ctx.triggered[0]["value"]:
            raise PreventUpdate
        actor, job_id = acting_admin(), int(ctx.triggered_id["index"])
        try:
            status = jobs.request_cancel(engine(), job_id, actor)
        except jobs.JobNotCancellable as error:
            return feedback(False, str(error))
        audit.record(engine(), actor, "backfill.cancel", str(job_id), {"status": status})
        if status == jobs.CANCELLED:
            return feedback(True, f"Job {job_id} cancelled before it started.")
        return feedback(True, f"Job {job_id} stops after the page it is fetching.")

    @access.callback(
        dash_app,
        Output(ids.ADMIN_BACKFILL_RUNS, "children"),
        Input(ids.ADMIN_BACKFILL_REFRESH, "n_intervals"),
        Input(ids.ADMIN_BACKFILL_FEEDBACK, "children"),
        Input(ids.ADMIN_BACKFILL_CANCEL_FEEDBACK, "children"),
        roles=access.ADMINS,
    )
    def update_backfills(_ticks, _feedback, _cancelled):
        return recent_backfills()
