"""Callbacks of the P2P spread page: the chart (with the viewer's alert rules drawn on it),
the market now, by method, the adverts, the run behind a point or a row, and the URL."""

from __future__ import annotations

import hashlib
from typing import Any

import dash_bootstrap_components as dbc
from dash import Dash, Input, Output, State, ctx, html, no_update

from app import access, state
from app.auth.users import current_role
from callbacks import common, live
from callbacks.alerts import spread_overlays
from callbacks.p2p_views import (
    chosen,
    fit_bucket,
    narrow_reason,
    offer_filter,
    silence_reason,
    spread_view,
)
from db import p2p_adverts, views
from db.p2p_query import OfferFilter
from layouts import ids
from layouts.controls import BUCKETS, RANGES, p2p_markets
from layouts.figures import empty_figure, methods_figure, with_alerts
from layouts.spread import DEFAULT_BUCKET, DEFAULT_RANGE
from layouts.urlstate import search

FILTERS = {"amount": Input(ids.SPREAD_AMOUNT, "value"),
           "payment": Input(ids.SPREAD_PAYMENT, "value"),
           "merchant": Input(ids.SPREAD_MERCHANT, "value"),
           "completion": Input(ids.SPREAD_COMPLETION, "value")}


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def now_card(market: str, summary: dict[str, Any], amount_label: str) -> dbc.Col:
    """A market's best prices and spread now."""
    body = [html.Div(market, className="small text-body-secondary"),
            html.Div([html.Span("ask ", className="small"), html.B(_fmt(summary["best_ask"])),
                      html.Span("  bid ", className="small ms-2"),
                      html.B(_fmt(summary["best_bid"]))]),
            html.Div(f"spread {_fmt(summary['spread_pct'], 3)} %{amount_label}",
                     className="small")]
    return dbc.Col(dbc.Card(dbc.CardBody(body, className="py-2"), className="h-100"),
                   md=3, className="mb-2")


def now_block(markets: list[str], filters) -> Any:
    """One card per market with its numbers now (amount-aware when an amount is set)."""
    label = f" for {filters.amount:,f}" if filters.amount is not None else ""
    cards = []
    for market in markets:
        summary = views.p2p_summary(market, filters)
        if summary["best_ask"] is None and summary["best_bid"] is None:
            text = silence_reason(market) or narrow_reason(market, filters)
            cards.append(dbc.Col(dbc.Alert(text, color="secondary", className="small py-2"),
                                 md=3))
        else:
            cards.append(now_card(market, summary, label))
    return dbc.Row(cards)


def advert_rows(adverts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Adverts as grid rows, each with a key (its side and the exchange's ad number) and the
    run id and capture time kept for a click."""
    return [{"key": f"{row['side']}:{row['offer_id']}", "side": row["side"],
             "price": row["price"], "available": row["available"],
             "min_fiat": row["min_fiat"], "max_fiat": row["max_fiat"],
             "methods": ", ".join(row["payment_methods"]),
             "merchant": "yes" if row["is_merchant"] else "",
             "advertiser": row["advertiser_name"] or row["advertiser_id"] or "",
             "completion": None if row["month_finish_rate"] is None
             else round(row["month_finish_rate"] * 100, 1),
             "orders": row["month_orders"], "run_id": row["run_id"],
             "captured_at": row["captured_at"]} for row in adverts]


def run_block(run_id: int | None) -> Any:
    """A run as the viewer may see it: admins get a link into the admin runs view."""
    run = p2p_adverts.run_summary(state.current().engine, run_id) if run_id else None
    if run is None:
        return dbc.Alert("No run is recorded for this point.", color="warning")
    started, finished = (common.when(views.epoch_ms(run[key]))
                         for key in ("started_at", "finished_at"))
    facts = [("Run", run["id"]), ("Source", run["source"]), ("Kind", run["kind"]),
             ("Market", run["market"] or "-"), ("Started", started), ("Finished", finished),
             ("Status", run["status"]), ("Received", run["received"]),
             ("Inserted", run["inserted"]), ("Duplicates", run["duplicates"]),
             ("Rejected", run["rejected"])]
    items = [item for label, value in facts for item in (
        html.Dt(label, className="col-4"), html.Dd(value, className="col-8 mb-1"))]
    parts: list[Any] = [html.Dl(items, className="row mb-2", id=ids.SPREAD_RUN_BODY + "-facts")]
    if current_role() == "admin":
        parts.append(dbc.Button("Open in Admin, ingestion runs", color="primary", size="sm",
                                href=f"/admin?tab=runs&run={run['id']}", external_link=True,
                                id=ids.SPREAD_RUN_BODY + "-admin"))
    else:
        parts.append(html.P("Times in UTC. Its error log is for admins.",
                            className="small text-body-secondary mb-0"))
    return html.Div(parts)


def advert_run(cell: dict | None, rows: list[dict] | None) -> int | None:
    """The run behind the advert of a clicked grid cell (rows are known by their key)."""
    key = (cell or {}).get("rowId")
    return next((row.get("run_id") for row in rows or [] if row.get("key") == key), None)


def point_run(click: dict | None) -> int | None:
    """The run behind a clicked chart point (its market and snapshot time)."""
    point = (click or {}).get("points", [{}])[0]
    custom = point.get("customdata")
    if not custom or len(custom) != 2 or custom[1] is None:
        return None
    return views.p2p_snapshot_run(custom[0], int(custom[1]))


def alert_overlays(figure: dict[str, Any], markets: list[str], range_key: str, bucket: str,
                   *, tz: str, filters: OfferFilter) -> tuple[dict[str, Any], str]:
    """The figure with the signed-in user's rules drawn on it (thresholds, alerting periods),
    and a digest of them: a change redraws the chart instead of patching its tail."""
    if not figure.get("data"):
        return figure, ""
    lines, periods = spread_overlays(markets, RANGES[range_key], filters)
    digest = repr((lines, [(p["start"], p["end"]) for p in periods]))
    shown = fit_bucket(bucket, RANGES[range_key])
    drawn = with_alerts(figure, lines=lines, periods=periods, tz=tz, now_ms=common.now_ms(),
                        bucket_ms=BUCKETS[shown] * 1000)
    return drawn, hashlib.sha1(digest.encode()).hexdigest()[:12]


def register(dash_app: Dash) -> None:
    """Every callback of the spread page."""
    _register_chart(dash_app)
    _register_details(dash_app)
    _register_run_and_url(dash_app)


def _register_chart(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        output=[Output(ids.SPREAD_GRAPH, "figure"), Output(ids.SPREAD_MARKS, "data"),
                Output(ids.SPREAD_NOTE, "children")],
        inputs={"markets": Input(ids.SPREAD_MARKETS, "value"),
                "range_key": Input(ids.SPREAD_RANGE, "value"),
                "bucket": Input(ids.SPREAD_BUCKET, "value"), **FILTERS, **live.VIEWER},
        state={"old_marks": State(ids.SPREAD_MARKS, "data")},
        roles=access.EVERYONE,
    )
    def update_spread(*, markets, range_key, bucket, amount, payment, merchant, completion,
                      ticks, tz, theme, old_marks):
        markets = chosen(markets)
        range_key = range_key if range_key in RANGES else DEFAULT_RANGE
        bucket = bucket if bucket in BUCKETS else DEFAULT_BUCKET
        filters, tz = offer_filter(amount, payment, merchant, completion), common.tz_name(tz)
        figure, notes = spread_view(markets, bucket, range_key, filters, tz=tz,
                                    dark=common.is_dark(theme))
        figure, overlays = alert_overlays(figure, markets, range_key, bucket, tz=tz,
                                             filters=filters)
        key = f"{markets}|{range_key}|{bucket}|{filters}|{tz}|{theme}|{overlays}"
        content, marks = live.refresh(figure, old_marks, key, ticks)
        return content, marks, [common.note(text) for text in notes]

    @access.callback(
        dash_app,
        Output(ids.SPREAD_PAYMENT, "options"),
        Input(ids.SPREAD_MARKETS, "value"),
        State(ids.SPREAD_PAYMENT, "value"),
        roles=access.EVERYONE,
    )
    def update_payment_options(markets, selected):
        exchanges = tuple(sorted({market.exchange for market in p2p_markets()}))
        codes = views.p2p_method_codes(exchanges) if exchanges else []
        return sorted(set(codes) | set(selected or []))


def _register_details(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        output=[Output(ids.SPREAD_NOW, "children"), Output(ids.SPREAD_METHODS, "figure"),
                Output(ids.SPREAD_ADVERTS, "rowData")],
        inputs={"markets": Input(ids.SPREAD_MARKETS, "value"), **FILTERS, **live.VIEWER},
        roles=access.EVERYONE,
    )
    def update_details(*, markets, amount, payment, merchant, completion, ticks, tz, theme):
        markets, dark = chosen(markets), common.is_dark(theme)
        filters = offer_filter(amount, payment, merchant, completion)
        if not markets:
            message = common.NO_P2P if not p2p_markets() else "Choose one or more P2P markets."
            return None, empty_figure(message, dark), []
        first = markets[0]
        methods = views.p2p_methods(first, filters)
        methods_chart = (methods_figure(methods, dark=dark, revision=first) if methods else
                         empty_figure(silence_reason(first) or
                                      f"No payment method of {first} is mapped to a code, "
                                      "or none matches the filters.", dark))
        adverts = advert_rows(views.p2p_top_adverts(first, filters))
        return now_block(markets, filters), methods_chart, adverts


def _register_run_and_url(dash_app: Dash) -> None:
    @access.callback(
        dash_app,
        Output(ids.SPREAD_RUN, "is_open"),
        Output(ids.SPREAD_RUN_BODY, "children"),
        Output(ids.SPREAD_GRAPH, "clickData"),
        Input(ids.SPREAD_GRAPH, "clickData"),
        Input(ids.SPREAD_ADVERTS, "cellClicked"),
        State(ids.SPREAD_ADVERTS, "rowData"),
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_open_run(click, cell, rows):
        if ctx.triggered_id == ids.SPREAD_ADVERTS:
            # A cell click carries its time, so the same cell opens its run again.
            run_id = advert_run(cell, rows)
            return (no_update,) * 3 if run_id is None else (True, run_block(run_id), no_update)
        if not click:  # our own reset below
            return (no_update,) * 3
        # Forget the click, so the same point opens its run again.
        return True, run_block(point_run(click)), None

    @access.callback(
        dash_app,
        Output(ids.SPREAD_URL, "search"),
        inputs={"markets": Input(ids.SPREAD_MARKETS, "value"),
                "range_key": Input(ids.SPREAD_RANGE, "value"),
                "bucket": Input(ids.SPREAD_BUCKET, "value"), **FILTERS},
        roles=access.EVERYONE,
        prevent_initial_call=True,
    )
    def on_filters(*, markets, range_key, bucket, amount, payment, merchant, completion):
        return search({"markets": markets, "range": range_key, "bucket": bucket,
                       "amount": amount, "payment": payment, "merchant": bool(merchant),
                       "completion": completion})

